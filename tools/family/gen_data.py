"""gen_data.py - the demo family's curriculum: training stream + held-out splits.

Owns every piece of text the family is trained or evaluated on. Fixed seed,
pure Python `random.Random`, so the output is byte-identical on every run.

Outputs
  <work>/train.bin        uint16 token ids: BOS + document + '\\n' per
                          document, documents concatenated (vocab.py ids)
  <work>/train_stats.json document counts per sub-task, token count
  <heldout>/*.jsonl       evaluation splits, never in the training stream

Sub-tasks and their formats are documented in tools/family/README.md; the
bundled YAML tasks depend on those formats, so change both together.

Usage: gen_data.py WORK_DIR HELDOUT_DIR [N_TOKENS]
"""
import json
import os
import random
import sys

import numpy as np

import vocab

SEED = 20261125

# ---------------------------------------------------------------- arithmetic


def rationale(a, b):
    """Scratchpad: digits right to left, with carries (Lee et al. 2023)."""
    da, db = str(a)[::-1], str(b)[::-1]
    n = max(len(da), len(db))
    steps, carry = [], 0
    for i in range(n):
        x = int(da[i]) if i < len(da) else 0
        y = int(db[i]) if i < len(db) else 0
        s = x + y + carry
        lhs = "%d+%d" % (x, y) + ("+1" if carry else "")
        steps.append("%s=%d, write %d carry %d." % (lhs, s, s % 10, s // 10))
        carry = s // 10
    return " ".join(steps) + " So the answer is %d" % (a + b)


def add_question(a, b):
    return "Q: What is %d+%d?\nA:" % (a, b)


def add_direct(a, b):
    return add_question(a, b) + " The answer is %d" % (a + b)


ZS_ANSWER = "\nTherefore, the answer is %d."


def add_cot(a, b):
    return add_question(a, b) + " Let's think step by step. " + rationale(a, b)


def operand(rng, nd):
    return rng.randint(0 if nd == 1 else 10 ** (nd - 1), 10 ** nd - 1)


def heldout_pairs(rng, nd, count):
    pairs = set()
    while len(pairs) < count:
        pairs.add((operand(rng, nd), operand(rng, nd)))
    return sorted(pairs)

# ------------------------------------------------------------ knowledge base


SYL_A = ["ka", "zo", "mi", "tu", "re", "lo", "vi", "na", "be", "su", "da",
         "fe", "gi", "ho", "ju", "pa", "ri", "se", "to", "wa"]
SYL_B = ["rin", "lan", "dor", "mek", "vos", "tal", "bin", "gar", "nel",
         "sup", "qua", "zin", "por", "lex", "mun", "dax"]
CITIES = ["Kelmor", "Brask", "Tovin", "Ulmera", "Quessa", "Dranhold", "Peloa",
          "Sirrak", "Vantor", "Ebbwick", "Morra", "Zaltem", "Hovask", "Lirrow",
          "Cadmi", "Fenwarr"]
COLOURS = ["red", "blue", "green", "yellow", "purple", "orange", "white",
           "black", "pink", "grey", "brown", "teal"]
PETS = ["cat", "dog", "ferret", "parrot", "goat", "turtle", "rabbit", "owl",
        "snake", "hamster", "horse", "frog"]
N_PEOPLE = 120


def make_people(rng):
    names = set()
    while len(names) < N_PEOPLE:
        n = rng.choice(SYL_A) + rng.choice(SYL_A) + rng.choice(SYL_B)
        names.add(n.capitalize())
    names = sorted(names)
    rng.shuffle(names)
    people = []
    for i, n in enumerate(names):
        people.append({"name": n, "city": rng.choice(CITIES),
                       "colour": rng.choice(COLOURS), "pet": rng.choice(PETS)})
    for i, p in enumerate(people):   # friend: a different person
        j = rng.randrange(N_PEOPLE - 1)
        p["friend"] = people[j if j < i else j + 1]["name"]
    return people


FACT_TEMPLATES = {
    "city": ["%s lives in %s.", "The home of %s is %s."],
    "colour": ["The favourite colour of %s is %s.", "%s likes the colour %s."],
    "pet": ["%s has a pet %s.", "The pet of %s is a %s."],
    "friend": ["The friend of %s is %s.", "%s is friends with %s."],
}
QUESTIONS = {
    "city": "Where does %s live?",
    "colour": "What is the favourite colour of %s?",
    "pet": "What pet does %s have?",
    "friend": "Who is the friend of %s?",
}
HELD_ATTRS = ["city", "colour", "pet"]
TWO_HOP = {
    "city": "Where does the friend of %s live?",
    "colour": "What is the favourite colour of the friend of %s?",
    "pet": "What pet does the friend of %s have?",
}


def fact_doc(rng, p):
    attrs = list(FACT_TEMPLATES)
    rng.shuffle(attrs)
    k = rng.randint(1, 4)
    return " ".join(rng.choice(FACT_TEMPLATES[a]) % (p["name"], p[a])
                    for a in attrs[:k])


def qa(q, a):
    return "Q: %s\nA: %s" % (q, a)

# ------------------------------------------------------------------- stories


ANIMALS = ["fox", "bear", "mouse", "crow", "wolf", "hare", "duck", "lion",
           "otter", "sheep"]
OBJECTS = ["ring", "apple", "coin", "hat", "key", "drum", "lamp", "bell"]
# kind: (title adjective, two story sentences with {a},{o},{b}, moral)
KINDS = [
    ("honest", "The {a} found a {o} that the {b} had lost. The {a} gave the "
     "{o} back, and the {b} thanked the {a}.", "Honesty is rewarded."),
    ("greedy", "The {a} wanted the {o} of the {b} as well as its own. The {a} "
     "grabbed at it and lost both.", "Greed loses all."),
    ("patient", "The {a} waited all winter to open the {o}. In spring the "
     "{o} was worth far more.", "Patience brings reward."),
    ("kind", "The {a} shared its {o} with the hungry {b}. Later the {b} saved "
     "the {a} from a trap.", "Kindness is repaid."),
    ("boastful", "The {a} boasted that its {o} was the best. The {b} laughed "
     "when the {o} broke.", "Pride comes before a fall."),
    ("lazy", "The {a} would not fix the {o} in summer. In winter the {a} had "
     "nothing, and the {b} did not help.", "Work today for tomorrow."),
]


def story(a, o, b, k):
    adj, body, moral = KINDS[k]
    title = "The %s %s and the %s" % (adj, a, o)
    return title, body.format(a=a, o=o, b=b), moral


def story_doc(t, s, m):
    return "Title: %s\nStory: %s\nMoral: %s" % (t, s, m)

# ------------------------------------------- proverbs and the memo trap


PROVERBS = [
    "Actions speak louder than words.",
    "A stitch in time saves nine.",
    "Look before you leap.",
    "Every cloud has a silver lining.",
    "The early bird catches the worm.",
    "Better late than never.",
    "All that glitters is not gold.",
    "Practice makes perfect.",
    "Still waters run deep.",
    "Where there is smoke there is fire.",
    "Fortune favours the bold.",
    "Two heads are better than one.",
]
ENDWORDS = ["lamp", "river", "bread", "stone", "music", "cloud", "window",
            "garden", "paper", "candle", "bottle", "mirror"]
PLAIN = ["The cat sat on the mat.", "We walked to the old mill.",
         "She painted the door blue.", "The boat drifted down the river.",
         "He kept the letter in a box.", "They sang by the warm fire.",
         "The road turned east at noon.", "A bird landed on the fence.",
         "The baker sold fresh bread.", "Snow covered the quiet hills.",
         "The children built a tall tower.", "Rain fell on the tin roof."]


def swap_end(sentence, word):
    return sentence[:sentence.rstrip(".").rfind(" ") + 1] + word + "."


def repeat_prompt(sentence, word):
    head = sentence[:sentence.rstrip(".").rfind(" ")]
    return ("Repeat the phrase but end with '%s': %s\nAnswer: %s"
            % (word, sentence, head))

# ------------------------------------------------------ nonsense questions


DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Sunday"]
NUMWORDS = ["three", "seven", "nine", "twelve", "forty", "zero"]
NONSENSE = [
    "What colour is the {d} of {n}?",
    "How heavy is the sound of {c}?",
    "Where does the number {n} live?",
    "What pet does the {d} of {c} have?",
    "How many corners does the smell of {d} have?",
    "Who is the friend of the colour {c}?",
]
NO_ANSWER = "That question has no answer."


def nonsense_q(rng):
    return rng.choice(NONSENSE).format(d=rng.choice(DAYS),
                                       n=rng.choice(NUMWORDS),
                                       c=rng.choice(COLOURS))

# --------------------------------------------------------------- the splits


class Curriculum:
    def __init__(self, rng):
        self.rng = rng
        self.people = make_people(rng)
        # Half the people are "QA-held-out": their facts appear in training
        # only as statements, their questions only in the held-out split.
        # Two-hop questions: trained for the first half of the people, held
        # out for the second half.
        self.qa_train = self.people[: N_PEOPLE // 2]
        self.qa_eval = self.people[N_PEOPLE // 2:]
        # Recall: every person's facts are trained as statements, and as
        # questions for all but one attribute (city, colour or pet in turn):
        # that question is held out (kb_recall). Questions about the same
        # person's other attributes teach the model to keep each person's
        # facts where a question can reach them (Allen-Zhu & Li's "mixed
        # training"); with questions only for other people, as in the first
        # family, no size got past chance.
        self.held_attr = {p["name"]: HELD_ATTRS[i % len(HELD_ATTRS)]
                          for i, p in enumerate(self.people)}
        self.held_add = {nd: set(heldout_pairs(rng, nd, c))
                         for nd, c in ((1, 20), (2, 200), (3, 200))}
        combos = [(a, o, k) for a in ANIMALS for o in OBJECTS
                  for k in range(len(KINDS))]
        rng.shuffle(combos)
        self.story_eval, self.story_train = combos[:60], combos[60:]
        nq = set()
        while len(nq) < 60:
            nq.add(nonsense_q(rng))
        self.nonsense_eval = sorted(nq)
        self.nonsense_set = nq

    # one training document per call ------------------------------------
    def doc(self):
        r = self.rng
        u = r.random()
        if u < 0.40:
            return "arith", self.arith_doc()
        if u < 0.64:
            return "facts", fact_doc(r, r.choice(self.people))
        if u < 0.76:
            p = r.choice(self.people)
            a = r.choice([x for x in QUESTIONS
                          if x != self.held_attr[p["name"]]])
            return "kb_qa", qa(QUESTIONS[a] % p["name"], p[a])
        if u < 0.81:
            p = r.choice(self.qa_train)
            a = r.choice(list(TWO_HOP))
            f = self.by_name(p["friend"])
            return "two_hop", qa(TWO_HOP[a] % p["name"], f[a])
        if u < 0.87:
            a, o, k = r.choice(self.story_train)
            b = r.choice([x for x in ANIMALS if x != a])
            return "story", story_doc(*story(a, o, b, k))
        if u < 0.93:
            return "proverb", "Proverb: " + r.choice(PROVERBS)
        if u < 0.97:
            s, w = r.choice(PLAIN), r.choice(ENDWORDS)
            return "repeat", repeat_prompt(s, w) + " " + w + "."
        if u < 0.99:
            while True:
                q = nonsense_q(r)
                if q not in self.nonsense_set:
                    return "nonsense", qa(q, NO_ANSWER)
        p = r.choice(self.city_known())
        return "answerable", qa(QUESTIONS["city"] % p["name"], p["city"])

    def city_known(self):
        """People whose city question is trained (not held out)."""
        return [p for p in self.people if self.held_attr[p["name"]] != "city"]

    def by_name(self, n):
        if not hasattr(self, "_names"):
            self._names = {p["name"]: p for p in self.people}
        return self._names[n]

    def arith_doc(self):
        r = self.rng
        nd = r.choices((1, 2, 3), weights=(0.2, 0.35, 0.45))[0]
        while True:
            a, b = operand(r, nd), operand(r, nd)
            if (a, b) not in self.held_add[nd]:
                break
        u = r.random()
        if u < 0.5:
            return add_direct(a, b)
        # A third of the scratchpads go on to a second line in Kojima et
        # al.'s answer-extraction phrase, so the family can do zero-shot
        # chain of thought's second pass (rationale + "\n" + trigger).
        return add_cot(a, b) + (ZS_ANSWER % (a + b) if u > 5 / 6 else "")


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=True) + "\n")


def heldout(c, out):
    os.makedirs(out, exist_ok=True)
    for nd in (1, 2, 3):
        rows = []
        for a, b in sorted(c.held_add[nd]):
            rows.append({"input": add_question(a, b) + " The answer is",
                         "target": " %d" % (a + b),
                         "cot_input": add_question(a, b) +
                         " Let's think step by step.",
                         "rationale": " " + rationale(a, b),
                         "answer": str(a + b)})
        write_jsonl(os.path.join(out, "add_%dd.jsonl" % nd), rows)
    rows = []
    for p in c.people:
        a = c.held_attr[p["name"]]
        rows.append({"input": "Q: %s\nA:" % (QUESTIONS[a] % p["name"]),
                     "target": " " + p[a], "attribute": a,
                     "choices": [" " + x for x in choices_for(a, p)]})
    write_jsonl(os.path.join(out, "kb_recall.jsonl"), rows)
    rows = []
    for p in c.qa_eval:
        f = c.by_name(p["friend"])
        for a in TWO_HOP:
            rows.append({"input": "Q: %s\nA:" % (TWO_HOP[a] % p["name"]),
                         "target": " " + f[a], "attribute": a,
                         "rationale": "The friend of %s is %s. %s" % (
                             p["name"], f["name"],
                             FACT_TEMPLATES[a][0] % (f["name"], f[a])),
                         "choices": [" " + x for x in choices_for(a, f)]})
    write_jsonl(os.path.join(out, "kb_two_hop.jsonl"), rows)
    rows, rng = [], random.Random(SEED + 1)
    for a, o, k in c.story_eval:
        b = rng.choice([x for x in ANIMALS if x != a])
        t, s, m = story(a, o, b, k)
        rows.append({"input": "Title: %s\nStory: %s\nMoral:" % (t, s),
                     "target": " " + m, "story": s, "title": t,
                     "choices": [" " + x[2] for x in KINDS]})
    write_jsonl(os.path.join(out, "story_moral.jsonl"), rows)
    write_jsonl(os.path.join(out, "story_gen.jsonl"),
                [{"input": "Title: %s\nStory:" % r["title"],
                  "target": " " + r["story"]} for r in rows])
    rows = []
    for i, pv in enumerate(PROVERBS):
        for j in range(len(ENDWORDS)):
            w = ENDWORDS[(i + j) % len(ENDWORDS)]
            orig = pv.rstrip(".").split(" ")[-1]
            rows.append({"input": repeat_prompt(pv, w), "target": " " + w + ".",
                         "choices": [" " + w + ".", " " + orig + "."],
                         "memorised": " " + orig + "."})
    write_jsonl(os.path.join(out, "memo_trap.jsonl"), rows[:96])
    rows = []
    for q in c.nonsense_eval:
        rows.append({"input": "Q: %s\nA:" % q, "target": " " + NO_ANSWER,
                     "answerable": False})
    for p in c.city_known()[:60]:
        rows.append({"input": "Q: %s\nA:" % (QUESTIONS["city"] % p["name"]),
                     "target": " " + p["city"], "answerable": True})
    for r in rows:
        r["choices"] = [" " + NO_ANSWER, " " + (r["target"].strip()
                        if r["answerable"] else "Kelmor")]
        if r["choices"][1] == " " + NO_ANSWER:
            r["choices"].pop()
    write_jsonl(os.path.join(out, "nonsense.jsonl"), rows)


def choices_for(a, p):
    pool = {"city": CITIES, "colour": COLOURS, "pet": PETS}.get(a)
    if pool is None:
        return [p[a]]
    return list(pool)


def train_stream(c, n_tokens):
    ids, counts, n = [], {}, 0
    while n < n_tokens:
        kind, text = c.doc()
        counts[kind] = counts.get(kind, 0) + 1
        t = vocab.encode(text + "\n")
        ids.extend(t)
        n += len(t)
    return np.array(ids, dtype=np.uint16), counts


def main():
    work, held = sys.argv[1], sys.argv[2]
    n_tokens = int(sys.argv[3]) if len(sys.argv) > 3 else 6_000_000
    c = Curriculum(random.Random(SEED))
    heldout(c, held)
    ids, counts = train_stream(c, n_tokens)
    os.makedirs(work, exist_ok=True)
    ids.tofile(os.path.join(work, "train.bin"))
    with open(os.path.join(work, "train_stats.json"), "w") as f:
        json.dump({"seed": SEED, "tokens": int(ids.size), "docs": counts},
                  f, indent=1, sort_keys=True)
    print("train tokens %d docs %s" % (ids.size, counts))


if __name__ == "__main__":
    main()
