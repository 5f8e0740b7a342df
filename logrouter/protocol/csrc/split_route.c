/* Framing, routing and cooking: twins of framing._split_octets_py,
 * token_routing._route_frames_py, token_routing._split_route_py and
 * token_routing._route_to_py. */
#include "speedups.h"

/* The octet-counted frame at s[pos:n] ("LEN SP MSG", LEN without a leading zero, at most
 * MAX_LEN_DIGITS digits and max_frame): 1 with its message at s[*start:*start + *length],
 * 0 when what is at pos is not such a frame (or pos is at n), -1 when it is but has not all
 * arrived. */
static inline int
next_octet_frame(const char *s, Py_ssize_t n, Py_ssize_t pos, Py_ssize_t max_frame,
                 Py_ssize_t *start, Py_ssize_t *length)
{
    if (pos >= n || s[pos] < '1' || s[pos] > '9')
        return 0;
    Py_ssize_t limit = pos + MAX_LEN_DIGITS + 1;
    if (limit > n)
        limit = n;
    Py_ssize_t len = 0, i = pos;
    while (i < limit && s[i] >= '0' && s[i] <= '9') {
        len = len * 10 + (s[i] - '0');
        i++;
    }
    if (i >= limit || s[i] != ' ' || len > max_frame)
        return 0;
    if (i + 1 + len > n)
        return -1;
    *start = i + 1;
    *length = len;
    return 1;
}

/* split_octets(buf, pos, max_frame, out) -> int
 *
 * Append to `out` every well-formed octet-counted frame ("LEN SP MSG", LEN without a
 * leading zero, at most max_frame bytes) from buf[pos:], and return the position after
 * the last one: len(buf) when all was consumed, the start of the first frame that is not
 * of that shape, or -(pos + 1) when the frame at pos is of that shape but incomplete. */
PyObject *
lr_split_octets(PyObject *self, PyObject *args)
{
    PyObject *buf, *out;
    Py_ssize_t pos, max_frame;
    if (!PyArg_ParseTuple(args, "SnnO!:split_octets", &buf, &pos, &max_frame, &PyList_Type, &out))
        return NULL;
    const char *s = PyBytes_AS_STRING(buf);
    Py_ssize_t n = PyBytes_GET_SIZE(buf);
    if (pos < 0)
        pos = 0;
    Py_ssize_t start, length;
    int found;
    while ((found = next_octet_frame(s, n, pos, max_frame, &start, &length)) > 0) {
        PyObject *frame = PyBytes_FromStringAndSize(s + start, length);
        if (frame == NULL)
            return NULL;
        int rc = PyList_Append(out, frame);
        Py_DECREF(frame);
        if (rc < 0)
            return NULL;
        pos = start + length;
    }
    return PyLong_FromSsize_t(found < 0 ? -(pos + 1) : pos);
}

/* A copy of `frame` with s[a:b] replaced by `name`. */
static PyObject *
splice(const char *s, Py_ssize_t n, Py_ssize_t a, Py_ssize_t b, PyObject *name)
{
    Py_ssize_t name_len = PyBytes_GET_SIZE(name);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n - (b - a) + name_len);
    if (out == NULL)
        return NULL;
    char *o = PyBytes_AS_STRING(out);
    memcpy(o, s, (size_t)a);
    memcpy(o + a, PyBytes_AS_STRING(name), (size_t)name_len);
    memcpy(o + a + name_len, s + b, (size_t)(n - b));
    return out;
}

/* One slot of route_frames' per-call token cache: a token seen in this call, what `tokens`
 * gave for it (NULL: not a known token) and its channel's group list. All references owned. */
typedef struct {
    uint64_t hash;
    PyObject *token;  /* bytes; NULL marks an empty slot */
    PyObject *entry;  /* the (channel, name) tuple, or NULL when unknown */
    PyObject *group;  /* groups[channel], or NULL when unknown */
} token_slot;

static inline uint64_t
token_hash(const char *s, Py_ssize_t n)
{
    /* Eight bytes a step, each word mixed in with a multiply (a token is ~34 bytes: five
     * steps where a byte-wise hash takes 34 dependent ones). */
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    uint64_t tail = 0;
    memcpy(&tail, s + i, (size_t)(n - i));
    h = (h ^ tail) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

static void
free_slots(token_slot *slots, Py_ssize_t size)
{
    for (Py_ssize_t i = 0; i < size; i++) {
        Py_XDECREF(slots[i].token);
        Py_XDECREF(slots[i].entry);
        Py_XDECREF(slots[i].group);
    }
    PyMem_Free(slots);
}

/* The slot for token s[0:n]: a hit, or a slot filled now from `tokens` (and `groups`).
 * NULL with an exception set on error. A full probe window evicts its first slot. */
static token_slot *
lookup_token(token_slot *slots, Py_ssize_t mask, const char *s, Py_ssize_t n, PyObject *tokens,
             PyObject *groups)
{
    uint64_t h = token_hash(s, n);
    Py_ssize_t first = (Py_ssize_t)(h & (uint64_t)mask);
    token_slot *slot = NULL;
    for (Py_ssize_t probe = 0; probe < 8; probe++) {
        token_slot *candidate = &slots[(first + probe) & mask];
        if (candidate->token == NULL) {
            slot = candidate;
            break;
        }
        if (candidate->hash == h && PyBytes_GET_SIZE(candidate->token) == n
                && memcmp(PyBytes_AS_STRING(candidate->token), s, (size_t)n) == 0)
            return candidate;
    }
    if (slot == NULL)
        slot = &slots[first]; /* the window is full: evict the home slot */
    Py_CLEAR(slot->token);
    Py_CLEAR(slot->entry);
    Py_CLEAR(slot->group);
    PyObject *token = PyBytes_FromStringAndSize(s, n);
    if (token == NULL)
        return NULL;
    PyObject *entry = PyDict_GetItemWithError(tokens, token);
    if (entry == NULL && PyErr_Occurred()) {
        Py_DECREF(token);
        return NULL;
    }
    PyObject *group = NULL;
    if (entry != NULL) {
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2
                || !PyBytes_Check(PyTuple_GET_ITEM(entry, 1))) {
            PyErr_SetString(PyExc_TypeError, "tokens values must be (channel, bytes name)");
            Py_DECREF(token);
            return NULL;
        }
        Py_INCREF(entry); /* a channel's __eq__ below could change `tokens` */
        PyObject *channel = PyTuple_GET_ITEM(entry, 0);
        group = PyDict_GetItemWithError(groups, channel);
        if (group == NULL) {
            if (PyErr_Occurred() || (group = PyList_New(0)) == NULL
                    || PyDict_SetItem(groups, channel, group) < 0) {
                Py_XDECREF(group);
                Py_DECREF(entry);
                Py_DECREF(token);
                return NULL;
            }
        } else {
            Py_INCREF(group);
        }
    }
    slot->hash = h;
    slot->token = token;
    slot->entry = entry;
    slot->group = group;
    return slot;
}

/* The per-call token cache of route_frames and split_route: a table of at least 16 slots,
 * about two per expected frame, at most 16,384. NULL with MemoryError set on failure. */
static token_slot *
new_slots(Py_ssize_t frames, Py_ssize_t *size)
{
    Py_ssize_t want = 2 * frames;
    *size = 16;
    while (*size < want && *size < 16384)
        *size *= 2;
    token_slot *slots = PyMem_Calloc((size_t)*size, sizeof(token_slot));
    if (slots == NULL)
        PyErr_NoMemory();
    return slots;
}

/* What route_frames and split_route count: [0] routed, [1] not syslog, [2] no token,
 * [3] unknown token. */
enum { ROUTED, NOT_SYSLOG, NO_TOKEN, UNKNOWN_TOKEN };

/* Route the frame s[0:n]: append it cooked to its channel's group, or count why not.
 * The bytes at s must stay alive and unchanged meanwhile (a lookup may run Python code).
 * 0, or -1 with an exception set. */
static int
route_one(const char *s, Py_ssize_t n, token_slot *slots, Py_ssize_t mask, PyObject *tokens,
          PyObject *groups, Py_ssize_t *counts)
{
    Py_ssize_t sp[4];
    if (find_spaces(s, n, sp, 4) < 4) {
        counts[NOT_SYSLOG]++;
        return 0;
    }
    token_slot *slot = lookup_token(slots, mask, s + sp[2] + 1, sp[3] - sp[2] - 1, tokens, groups);
    if (slot == NULL)
        return -1;
    if (slot->entry == NULL) {
        if (sp[3] - sp[2] - 1 >= 2 && s[sp[2] + 1] == 't' && s[sp[2] + 2] == '.')
            counts[UNKNOWN_TOKEN]++;
        else
            counts[NO_TOKEN]++;
        return 0;
    }
    PyObject *cooked = splice(s, n, sp[2] + 1, sp[3], PyTuple_GET_ITEM(slot->entry, 1));
    if (cooked == NULL)
        return -1;
    int rc = PyList_Append(slot->group, cooked);
    Py_DECREF(cooked);
    if (rc < 0)
        return -1;
    counts[ROUTED]++;
    return 0;
}

/* route_frames(frames, tokens, groups) -> (not_syslog, no_token, unknown_token)
 *
 * For each frame, look up its APP-NAME (the fourth space-separated field) in `tokens`
 * (a dict of token -> (channel, name)); append the frame with APP-NAME replaced by name
 * to groups[channel] (a list, created on first use). Frames with fewer than five fields,
 * or whose APP-NAME is not a known token, are counted and left out.
 *
 * Each distinct token is looked up once per call (a small cache sized to the batch), so a
 * read of many frames for a few hundred apps pays neither a bytes object, a hash nor a dict
 * lookup per frame. */
PyObject *
lr_route_frames(PyObject *self, PyObject *args)
{
    PyObject *frames, *tokens, *groups;
    if (!PyArg_ParseTuple(args, "O!O!O!:route_frames", &PyList_Type, &frames, &PyDict_Type,
                          &tokens, &PyDict_Type, &groups))
        return NULL;
    Py_ssize_t counts[4] = {0, 0, 0, 0};
    Py_ssize_t size;
    token_slot *slots = new_slots(PyList_GET_SIZE(frames), &size);
    if (slots == NULL)
        return NULL;
    /* The size is read each round: a channel's __eq__ (Python) could change the list. */
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(frames); k++) {
        PyObject *frame = PyList_GET_ITEM(frames, k);
        if (!PyBytes_Check(frame)) {
            PyErr_SetString(PyExc_TypeError, "frames must be bytes");
            goto fail;
        }
        Py_INCREF(frame); /* ours while Python may run (a lookup, a channel's __eq__) */
        int rc = route_one(PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame), slots, size - 1,
                           tokens, groups, counts);
        Py_DECREF(frame);
        if (rc < 0)
            goto fail;
    }
    free_slots(slots, size);
    return Py_BuildValue("nnn", counts[NOT_SYSLOG], counts[NO_TOKEN], counts[UNKNOWN_TOKEN]);
fail:
    free_slots(slots, size);
    return NULL;
}

/* split_route(buf, pos, max_frame, tokens, groups)
 *     -> (pos, routed, not_syslog, no_token, unknown_token)
 *
 * split_octets and route_frames in one pass, without a bytes object per frame: each
 * well-formed octet-counted frame of buf[pos:] is routed straight from `buf` (as
 * route_frames would route it), up to where split_octets would stop; `pos` is what
 * split_octets would return. */
PyObject *
lr_split_route(PyObject *self, PyObject *args)
{
    PyObject *buf, *tokens, *groups;
    Py_ssize_t pos, max_frame;
    if (!PyArg_ParseTuple(args, "SnnO!O!:split_route", &buf, &pos, &max_frame, &PyDict_Type,
                          &tokens, &PyDict_Type, &groups))
        return NULL;
    const char *s = PyBytes_AS_STRING(buf); /* bytes: immutable, and the caller holds it */
    Py_ssize_t n = PyBytes_GET_SIZE(buf);
    if (pos < 0)
        pos = 0;
    Py_ssize_t counts[4] = {0, 0, 0, 0};
    Py_ssize_t size;
    token_slot *slots = new_slots(pos < n ? (n - pos) / 128 : 0, &size);
    if (slots == NULL)
        return NULL;
    Py_ssize_t start, length;
    int found;
    while ((found = next_octet_frame(s, n, pos, max_frame, &start, &length)) > 0) {
        if (route_one(s + start, length, slots, size - 1, tokens, groups, counts) < 0) {
            free_slots(slots, size);
            return NULL;
        }
        pos = start + length;
    }
    if (found < 0)
        pos = -(pos + 1);
    free_slots(slots, size);
    return Py_BuildValue("nnnnn", pos, counts[ROUTED], counts[NOT_SYSLOG], counts[NO_TOKEN],
                         counts[UNKNOWN_TOKEN]);
}

/* route_to(frames, token, name) -> list: frames whose APP-NAME equals token get name
 * instead; every other frame is kept as it is. */
PyObject *
lr_route_to(PyObject *self, PyObject *args)
{
    PyObject *frames, *token, *name;
    if (!PyArg_ParseTuple(args, "O!SS:route_to", &PyList_Type, &frames, &token, &name))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(frames);
    const char *t = PyBytes_AS_STRING(token);
    Py_ssize_t tlen = PyBytes_GET_SIZE(token);
    PyObject *out = PyList_New(count);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *frame = PyList_GET_ITEM(frames, k);
        if (!PyBytes_Check(frame)) {
            Py_DECREF(out);
            PyErr_SetString(PyExc_TypeError, "frames must be bytes");
            return NULL;
        }
        const char *s = PyBytes_AS_STRING(frame);
        Py_ssize_t n = PyBytes_GET_SIZE(frame);
        Py_ssize_t sp[4];
        PyObject *item;
        if (find_spaces(s, n, sp, 4) == 4 && sp[3] - sp[2] - 1 == tlen
                && memcmp(s + sp[2] + 1, t, (size_t)tlen) == 0) {
            item = splice(s, n, sp[2] + 1, sp[3], name);
            if (item == NULL) {
                Py_DECREF(out);
                return NULL;
            }
        } else {
            Py_INCREF(frame);
            item = frame;
        }
        PyList_SET_ITEM(out, k, item);
    }
    return out;
}
