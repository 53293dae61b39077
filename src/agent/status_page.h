/*
 * The status page served at / by admin_http.c: one self-contained HTML
 * document (inline CSS and JavaScript, no external assets, no web fonts)
 * that fetches /status.json every 2 s and renders it with textContent
 * only, never innerHTML, since the data holds attacker-controlled text.
 * Built once, on the main thread, by admin_http_new.
 */
#ifndef SPOT_STATUS_PAGE_H
#define SPOT_STATUS_PAGE_H

#include <stddef.h>

/* Builds the page into a malloc'd buffer (*html, *len; caller frees) and
 * the value of the Content-Security-Policy header that goes with it
 * (*csp, malloc'd, caller frees): the page's inline style and script are
 * allowed by their SHA-256 hashes, nothing else may run, and the page may
 * only fetch from its own origin. Returns SPOT_OK or SPOT_ENOMEM. */
int status_page_build(char **html, size_t *len, char **csp);

#endif
