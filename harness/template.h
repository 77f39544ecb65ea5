/*
 * template.h - the prompt template language of task files.
 *
 * Owns: parsing and rendering templates. The language is deliberately
 * tiny: literal text plus placeholders `{{name}}` (spaces inside the
 * braces are allowed: `{{ name }}`), where name is [A-Za-z_][A-Za-z0-9_-]*.
 * There are no sections, loops, conditionals or escapes; a `{{` that does
 * not start a well-formed placeholder is an error, so typos surface at
 * load time instead of leaking into prompts. What a name means (input,
 * choices, record fields...) is up to the caller's lookup function.
 */
#ifndef EMERGE_TEMPLATE_H
#define EMERGE_TEMPLATE_H

#include "base/common.h"

/* Returns the text of placeholder name, or NULL when name is unknown. */
typedef const char *(*tmpl_lookup)(void *ctx, const char *name);

/* Appends the rendering of text to out. An unknown name or a malformed
 * placeholder is an error ("template line L col C: ..."). */
int tmpl_render(const char *text, tmpl_lookup fn, void *ctx, em_buf *out,
                em_err *err);

/* The placeholder names of text in order of appearance (duplicates kept),
 * as a malloc'd array of malloc'd strings; free with tmpl_names_free. */
int tmpl_names(const char *text, char ***names, int *n, em_err *err);
void tmpl_names_free(char **names, int n);

#endif
