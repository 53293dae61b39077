/*
 * A pre-check for yajl_tree_parse(): yajl's tree parser accepts any depth
 * and yajl_tree_free() recurses once per level, so a file of a few hundred
 * thousand '[' overflows the stack. Callers refuse text nested deeper than
 * a cap before building a tree. Pure function: any thread.
 */
#ifndef SPOT_JSON_DEPTH_H
#define SPOT_JSON_DEPTH_H

#include <stddef.h>

/* True when the n bytes of JSON text at s open more than max arrays or
 * objects inside one another (strings, with their escapes, are skipped;
 * the text need not be valid JSON). */
int json_depth_exceeds(const char *s, size_t n, unsigned max);

#endif
