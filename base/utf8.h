/*
 * utf8.h - UTF-8 helpers every layer shares (base/utf8.c says why there
 * are a strict and a lenient decoder).
 */
#ifndef EMERGE_UTF8_H
#define EMERGE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when none
 * starts there (stray continuation byte, overlong form, surrogate, above
 * U+10FFFF, cut short). NUL is a valid 1-byte sequence. For NUL-
 * terminated text n may be SIZE_MAX: a NUL ends any sequence it cuts. */
size_t utf8_valid_len(const char *s, size_t n);
/* Code points in s[0..n): the bytes that are not continuation bytes. */
long utf8_count(const char *s, size_t n);
/* The largest k <= max at which s can be cut without splitting a
 * character (s[max] must be readable). */
size_t utf8_cut(const char *s, size_t max);

/* Bytes of the sequence a lead byte announces, by its top four bits, as
 * llama.cpp counts them: 1 for ASCII and stray continuation bytes. */
size_t utf8_lead_len(unsigned char lead);
/* Decodes one code point at s[*i] (advancing *i) with llama.cpp's
 * leniency: structure only; an invalid sequence gives U+FFFD and advances
 * one byte. */
uint32_t utf8_next_lenient(const char *s, size_t n, size_t *i);
/* Encodes cpt (<= 0x10FFFF; anything else as U+FFFD); returns length. */
int utf8_put(uint32_t cpt, char out[4]);

#endif
