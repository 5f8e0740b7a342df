/*
 * logrouter.protocol._speedups: C versions of the per-line loops of the relay path.
 *
 * module.c (method table), split_route.c (framing, routing, cooking), render.c (drain and
 * session renderings), send_many.c (a round of sends without the GIL); speedups.h holds what
 * they share.
 *
 * Each function here has a pure-Python twin that defines its behaviour:
 *
 *   split_octets   framing._split_octets_py    (FrameSplitter's octet-counted fast path)
 *   route_frames   token_routing._route_frames_py  (route_by_token: token -> channel, cooking)
 *   split_route    token_routing._split_route_py   (split_octets and route_frames in one pass,
 *                                               no bytes object per frame: a syslog read)
 *   route_to       token_routing._route_to_py  (cooking for frames posted with one token)
 *   render_syslog  drainfmt._render_syslog_py  (syslog drain rendering)
 *   render_http    drainfmt._render_http_py    (HTTP drain body rendering)
 *   render_tail    tailfmt._render_lines_py    (session rendering: text or SSE)
 *   send_many      transport.send_many._send_many_py  (non-blocking sends on many sockets;
 *                                               the one function that releases the GIL)
 *   untrack        speedups.untrack            (a container of bytes out of the cyclic GC;
 *                                               without C it stays tracked: slower, same result)
 *
 * RouteCache (split_route.c) keeps route_frames' and split_route's token table across
 * calls; without C there is none and nothing else changes.
 *
 * tests/protocol/test_speedups.py checks each pair gives the same result on generated
 * input. The functions only slice and splice bytes; they never block, never release the GIL
 * and hold no state but the RouteCache they are given — send_many aside, the one that does
 * I/O (its caller is in the transport layer). Anything unusual (a line that is not in the common RFC 5424 shape) goes back to
 * Python: split_octets stops and returns where it stopped, the renderers call the `slow`
 * function they are given for that one line.
 */
#ifndef LOGROUTER_SPEEDUPS_H
#define LOGROUTER_SPEEDUPS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Seven digits cover any octet count up to 9,999,999 (framing._MAX_LEN_DIGITS). */
#define MAX_LEN_DIGITS 7

/* Offsets of the first `want` spaces of s[0:n]; returns how many were found.
 *
 * Eight bytes at a time: the header fields are short (a handful to a few dozen bytes), where
 * a memchr call per field costs more in set-up than it saves. Each byte's high bit in `m`
 * is set exactly when that byte is a space (no carry crosses bytes: (x & 0x7f) + 0x7f is at
 * most 0xfe), and the lowest set bit is the first space on a little-endian machine. */
static inline int
find_spaces(const char *s, Py_ssize_t n, Py_ssize_t *sp, int want)
{
    int found = 0;
    Py_ssize_t i = 0;
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t low7 = 0x7f7f7f7f7f7f7f7fULL, spaces = 0x2020202020202020ULL;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        uint64_t x = w ^ spaces; /* a space becomes a zero byte */
        uint64_t m = ~(((x & low7) + low7) | x | low7);
        while (m) {
            sp[found++] = i + (__builtin_ctzll(m) >> 3);
            if (found == want)
                return found;
            m &= m - 1;
        }
    }
#endif
    for (; i < n; i++) {
        if (s[i] == ' ') {
            sp[found++] = i;
            if (found == want)
                return found;
        }
    }
    return found;
}

/* Write n in decimal followed by `suffix` (0 for none) into out (at least 24 bytes); return
 * the length. snprintf costs more than the rest of a line's rendering. */
static inline int
put_decimal(char *out, long long n, char suffix)
{
    char tmp[24];
    int len = 0, pos = 0;
    unsigned long long v = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
    do {
        tmp[len++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (n < 0)
        out[pos++] = '-';
    for (int i = 0; i < len; i++)
        out[pos++] = tmp[len - 1 - i];
    if (suffix)
        out[pos++] = suffix;
    return pos;
}

PyObject *lr_split_octets(PyObject *self, PyObject *args);
PyObject *lr_route_frames(PyObject *self, PyObject *args);
PyObject *lr_split_route(PyObject *self, PyObject *args);
PyObject *lr_route_to(PyObject *self, PyObject *args);
PyObject *lr_render_syslog(PyObject *self, PyObject *args);
PyObject *lr_render_http(PyObject *self, PyObject *args);
PyObject *lr_render_tail(PyObject *self, PyObject *args);
PyObject *lr_send_many(PyObject *self, PyObject *args);

extern PyTypeObject RouteCacheType;

#endif
