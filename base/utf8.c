/*
 * utf8.c - UTF-8, once: the strict validator that decides what is valid
 * text (JSON, XML and HTML output must be), llama.cpp's lenient decoder
 * that tokenizers must match byte for byte, the encoder, code point
 * counts and cutting at a character boundary.
 *
 * Why two decoders: a tokenizer has to split invalid text exactly as
 * llama.cpp does (structure only, no overlong or surrogate checks), while
 * text written to a JSON or XML document must be valid UTF-8 in the
 * strict sense (RFC 3629) or a parser rejects the whole document.
 */
#include "base/utf8.h"

size_t utf8_valid_len(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    if (n == 0)
        return 0;
    size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2
               : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
               : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0) ||
        (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))
        return 0; /* overlong, surrogate, above U+10FFFF */
    return len;
}

long utf8_count(const char *s, size_t n)
{
    long c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

size_t utf8_cut(const char *s, size_t max)
{
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

size_t utf8_lead_len(unsigned char lead)
{
    static const unsigned char len[16] = {1, 1, 1, 1, 1, 1, 1, 1,
                                          1, 1, 1, 1, 2, 2, 3, 4};
    return len[lead >> 4];
}

static int is_cont(const char *s, size_t n, size_t i)
{
    return i < n && ((unsigned char)s[i] & 0xC0) == 0x80;
}

/* llama.cpp's unicode_cpt_from_utf8: no overlong or surrogate checks,
 * only structure; a broken sequence costs one byte and yields U+FFFD. */
uint32_t utf8_next_lenient(const char *s, size_t n, size_t *i)
{
    const unsigned char *u = (const unsigned char *)s + *i;
    size_t k = *i;
    if (!(u[0] & 0x80)) {
        *i += 1;
        return u[0];
    }
    if ((u[0] & 0x40) && !(u[0] & 0x20) && is_cont(s, n, k + 1)) {
        *i += 2;
        return ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
    }
    if ((u[0] & 0x60) == 0x60 && !(u[0] & 0x10) && is_cont(s, n, k + 1) &&
        is_cont(s, n, k + 2)) {
        *i += 3;
        return ((uint32_t)(u[0] & 0x0F) << 12) |
               ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    }
    if ((u[0] & 0x70) == 0x70 && !(u[0] & 0x08) && is_cont(s, n, k + 1) &&
        is_cont(s, n, k + 2) && is_cont(s, n, k + 3)) {
        *i += 4;
        return ((uint32_t)(u[0] & 0x07) << 18) |
               ((uint32_t)(u[1] & 0x3F) << 12) |
               ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
    }
    *i += 1;
    return 0xFFFD;
}

int utf8_put(uint32_t c, char out[4])
{
    if (c > 0x10FFFF)
        c = 0xFFFD;
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}
