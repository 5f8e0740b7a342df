/*
 * logrouter.protocol._speedups: C versions of the per-line loops of the relay path.
 *
 * module.c (method table), split_route.c (framing, routing, cooking), render.c (drain and
 * session renderings), send_many.c (a round of sends without the GIL), pack.c (history
 * chunks packed without the GIL); speedups.h holds what they share.
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
 *                                               releases the GIL)
 *   render_send_syslog  transport.send_many._render_send_syslog_py  (render_syslog and
 *                                               send_many in one, the GIL released for both)
 *   pack_chunks    chunkfmt._pack_chunks_py    (a history's lines packed as msgpack chunks;
 *                                               reads the lines with the GIL released)
 *   untrack        speedups.untrack            (a container of bytes out of the cyclic GC;
 *                                               without C it stays tracked: slower, same result)
 *
 * RouteCache (split_route.c) keeps route_frames' and split_route's token table across
 * calls; without C there is none and nothing else changes.
 *
 * tests/protocol/test_speedups.py checks each pair gives the same result on generated
 * input. The functions only slice and splice bytes; they never block, never release the GIL
 * and hold no state but the RouteCache they are given — send_many and render_send_syslog
 * aside, which do I/O without the GIL (their caller is in the transport layer), and
 * pack_chunks, which reads its lines without the GIL (its caller, a history compaction in a
 * worker thread, owns the lists it packs). Anything
 * unusual (a line that is not in the common RFC 5424 shape) goes back to Python:
 * split_octets stops and returns where it stopped, the renderers call the `slow` function
 * they are given for that one line (render_send_syslog leaves such a write to its caller).
 */
#ifndef LOGROUTER_SPEEDUPS_H
#define LOGROUTER_SPEEDUPS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Seven digits cover any octet count up to 9,999,999 (framing._MAX_LEN_DIGITS). */
#define MAX_LEN_DIGITS 7

/* Hints to fetch memory a loop will read (or write) a few steps on: with thousands of apps
 * the objects a line touches are scattered and rarely in cache, and a loop that waits for
 * each in turn runs at memory latency. A hint never faults and never changes a result. */
#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch((p), 0, 3)
#define PREFETCH_W(p) __builtin_prefetch((p), 1, 3)
#else
#define PREFETCH(p) ((void)(p))
#define PREFETCH_W(p) ((void)(p))
#endif

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

/* Whether a line has the fast shape, <PRI>1 TIME HOST APP PROCID MSGID - MSG (version 1, no
 * STRUCTURED-DATA); fills sp with the offsets of its first seven spaces. */
static inline int
fast_shape(const char *s, Py_ssize_t n, Py_ssize_t *sp)
{
    return find_spaces(s, n, sp, 7) == 7 && sp[6] - sp[5] == 2 && s[sp[5] + 1] == '-'
           && sp[0] >= 2 && s[0] == '<' && s[sp[0] - 2] == '>' && s[sp[0] - 1] == '1';
}

/* The most render_fast_frame writes for a line of n bytes and a host or token of dtlen:
 * the line, the token, a length prefix and its space, the separator and a newline. */
#define FAST_FRAME_BOUND(n, dtlen) ((n) + (dtlen) + 16)

/* Write the frame of the fast-shape line s[0:n] (sp: fast_shape's spaces) at o and return its
 * length: "LEN <PRI>1 TIME " host-or-token " APP PROCID" sep MSG, sep " - - " plus a newline
 * when MSG lacks one for a syslog drain (`syslog`), " - " for HTTP. */
static inline Py_ssize_t
render_fast_frame(char *o, const char *s, Py_ssize_t n, const Py_ssize_t *sp, const char *dt,
                  Py_ssize_t dtlen, int syslog)
{
    const char *sep = syslog ? " - - " : " - ";
    Py_ssize_t seplen = syslog ? 5 : 3;
    int newline = syslog && s[n - 1] != '\n';
    Py_ssize_t body = sp[1] + 1 + dtlen + (sp[4] - sp[2]) + seplen + (n - sp[6] - 1) + newline;
    char digits[24];
    int dlen = put_decimal(digits, (long long)body, ' ');
    memcpy(o, digits, (size_t)dlen);
    o += dlen;
    memcpy(o, s, (size_t)(sp[1] + 1));
    o += sp[1] + 1;
    memcpy(o, dt, (size_t)dtlen);
    o += dtlen;
    memcpy(o, s + sp[2], (size_t)(sp[4] - sp[2]));
    o += sp[4] - sp[2];
    memcpy(o, sep, (size_t)seplen);
    o += seplen;
    memcpy(o, s + sp[6] + 1, (size_t)(n - sp[6] - 1));
    o += n - sp[6] - 1;
    if (newline)
        *o = '\n';
    return dlen + body;
}

PyObject *lr_split_octets(PyObject *self, PyObject *args);
PyObject *lr_route_frames(PyObject *self, PyObject *args);
PyObject *lr_split_route(PyObject *self, PyObject *args);
PyObject *lr_route_to(PyObject *self, PyObject *args);
PyObject *lr_render_syslog(PyObject *self, PyObject *args);
PyObject *lr_render_http(PyObject *self, PyObject *args);
PyObject *lr_render_tail(PyObject *self, PyObject *args);
PyObject *lr_send_many(PyObject *self, PyObject *args);
PyObject *lr_render_send_syslog(PyObject *self, PyObject *args);
PyObject *lr_pack_chunks(PyObject *self, PyObject *args);

extern PyTypeObject RouteCacheType;

#endif
