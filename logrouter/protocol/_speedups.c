/*
 * logrouter.protocol._speedups: C versions of the three per-line loops of the relay path.
 *
 * Each function here has a pure-Python twin that defines its behaviour:
 *
 *   split_octets   framing._split_octets_py    (FrameSplitter's octet-counted fast path)
 *   route_frames   router._route_frames_py     (route_by_token: token -> channel, cooking)
 *   route_to       router._route_to_py         (cooking for frames posted with one token)
 *   render_syslog  drainfmt._render_syslog_py  (syslog drain rendering)
 *   render_http    drainfmt._render_http_py    (HTTP drain body rendering)
 *
 * tests/protocol/test_speedups.py checks each pair gives the same result on generated
 * input. The functions only slice and splice bytes; they never block, never release the
 * GIL and hold no state. Anything unusual (a line that is not in the common RFC 5424
 * shape) goes back to Python: split_octets stops and returns where it stopped, the
 * renderers call the `slow` function they are given for that one line.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* Seven digits cover any octet count up to 9,999,999 (framing._MAX_LEN_DIGITS). */
#define MAX_LEN_DIGITS 7

/* split_octets(buf, pos, max_frame, out) -> int
 *
 * Append to `out` every well-formed octet-counted frame ("LEN SP MSG", LEN without a
 * leading zero, at most max_frame bytes) from buf[pos:], and return the position after
 * the last one: len(buf) when all was consumed, the start of the first frame that is not
 * of that shape, or -(pos + 1) when the frame at pos is of that shape but incomplete. */
static PyObject *
split_octets(PyObject *self, PyObject *args)
{
    PyObject *buf, *out;
    Py_ssize_t pos, max_frame;
    if (!PyArg_ParseTuple(args, "SnnO!:split_octets", &buf, &pos, &max_frame, &PyList_Type, &out))
        return NULL;
    const char *s = PyBytes_AS_STRING(buf);
    Py_ssize_t n = PyBytes_GET_SIZE(buf);
    if (pos < 0)
        pos = 0;
    while (pos < n) {
        Py_ssize_t limit = pos + MAX_LEN_DIGITS + 1;
        if (limit > n)
            limit = n;
        if (s[pos] < '1' || s[pos] > '9')
            break;
        Py_ssize_t length = 0, i = pos;
        while (i < limit && s[i] >= '0' && s[i] <= '9') {
            length = length * 10 + (s[i] - '0');
            i++;
        }
        if (i >= limit || s[i] != ' ' || length > max_frame)
            break;
        Py_ssize_t end = i + 1 + length;
        if (end > n)
            return PyLong_FromSsize_t(-(pos + 1));
        PyObject *frame = PyBytes_FromStringAndSize(s + i + 1, length);
        if (frame == NULL)
            return NULL;
        int rc = PyList_Append(out, frame);
        Py_DECREF(frame);
        if (rc < 0)
            return NULL;
        pos = end;
    }
    return PyLong_FromSsize_t(pos);
}

/* Offsets of the first `want` spaces of s[0:n]; returns how many were found. */
static inline int
find_spaces(const char *s, Py_ssize_t n, Py_ssize_t *sp, int want)
{
    const char *p = s, *e = s + n;
    int found = 0;
    while (found < want) {
        const char *q = memchr(p, ' ', (size_t)(e - p));
        if (q == NULL)
            break;
        sp[found++] = q - s;
        p = q + 1;
    }
    return found;
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

/* route_frames(frames, tokens, groups) -> (not_syslog, no_token, unknown_token)
 *
 * For each frame, look up its APP-NAME (the fourth space-separated field) in `tokens`
 * (a dict of token -> (channel, name)); append the frame with APP-NAME replaced by name
 * to groups[channel] (a list, created on first use). Frames with fewer than five fields,
 * or whose APP-NAME is not a known token, are counted and left out. */
static PyObject *
route_frames(PyObject *self, PyObject *args)
{
    PyObject *frames, *tokens, *groups;
    if (!PyArg_ParseTuple(args, "O!O!O!:route_frames", &PyList_Type, &frames, &PyDict_Type,
                          &tokens, &PyDict_Type, &groups))
        return NULL;
    Py_ssize_t not_syslog = 0, no_token = 0, unknown_token = 0;
    /* The last channel's group, kept (with a reference) for runs of frames of one channel. */
    PyObject *last_channel = NULL, *last_group = NULL;
    /* The size is read each round: a channel's __eq__ (Python) could change the list. */
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(frames); k++) {
        PyObject *frame = PyList_GET_ITEM(frames, k);
        if (!PyBytes_Check(frame)) {
            PyErr_SetString(PyExc_TypeError, "frames must be bytes");
            goto fail;
        }
        const char *s = PyBytes_AS_STRING(frame);
        Py_ssize_t n = PyBytes_GET_SIZE(frame);
        Py_ssize_t sp[4];
        if (find_spaces(s, n, sp, 4) < 4) {
            not_syslog++;
            continue;
        }
        PyObject *token = PyBytes_FromStringAndSize(s + sp[2] + 1, sp[3] - sp[2] - 1);
        if (token == NULL)
            goto fail;
        PyObject *entry = PyDict_GetItemWithError(tokens, token);
        Py_DECREF(token);
        if (entry == NULL) {
            if (PyErr_Occurred())
                goto fail;
            if (sp[3] - sp[2] - 1 >= 2 && s[sp[2] + 1] == 't' && s[sp[2] + 2] == '.')
                unknown_token++;
            else
                no_token++;
            continue;
        }
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2
                || !PyBytes_Check(PyTuple_GET_ITEM(entry, 1))) {
            PyErr_SetString(PyExc_TypeError, "tokens values must be (channel, bytes name)");
            goto fail;
        }
        Py_INCREF(entry); /* a channel's __eq__ below could change `tokens` */
        PyObject *channel = PyTuple_GET_ITEM(entry, 0);
        PyObject *cooked = splice(s, n, sp[2] + 1, sp[3], PyTuple_GET_ITEM(entry, 1));
        if (cooked == NULL) {
            Py_DECREF(entry);
            goto fail;
        }
        if (channel != last_channel) {
            PyObject *group = PyDict_GetItemWithError(groups, channel);
            if (group == NULL) {
                if (PyErr_Occurred() || (group = PyList_New(0)) == NULL
                        || PyDict_SetItem(groups, channel, group) < 0) {
                    Py_XDECREF(group);
                    Py_DECREF(cooked);
                    Py_DECREF(entry);
                    goto fail;
                }
            } else {
                Py_INCREF(group);
            }
            Py_XDECREF(last_group);
            Py_XDECREF(last_channel);
            Py_INCREF(channel);
            last_channel = channel;
            last_group = group;
        }
        Py_DECREF(entry);
        int rc = PyList_Append(last_group, cooked);
        Py_DECREF(cooked);
        if (rc < 0)
            goto fail;
    }
    Py_XDECREF(last_group);
    Py_XDECREF(last_channel);
    return Py_BuildValue("nnn", not_syslog, no_token, unknown_token);
fail:
    Py_XDECREF(last_group);
    Py_XDECREF(last_channel);
    return NULL;
}

/* route_to(frames, token, name) -> list: frames whose APP-NAME equals token get name
 * instead; every other frame is kept as it is. */
static PyObject *
route_to(PyObject *self, PyObject *args)
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

/* A growable byte buffer for render_syslog. */
typedef struct {
    char *data;
    Py_ssize_t len, cap;
} outbuf;

static int
outbuf_reserve(outbuf *b, Py_ssize_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline void
outbuf_put(outbuf *b, const char *s, Py_ssize_t n)
{
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += n;
}

/* Append slow(line)'s frame to b (rendered) or count it skipped (None). 0, or -1 on error. */
static int
render_slow(outbuf *b, PyObject *slow, PyObject *line, Py_ssize_t *rendered, Py_ssize_t *skipped)
{
    PyObject *frame = PyObject_CallOneArg(slow, line);
    if (frame == NULL)
        return -1;
    int rc = 0;
    if (frame == Py_None) {
        (*skipped)++;
    } else if (!PyBytes_Check(frame)) {
        PyErr_SetString(PyExc_TypeError, "slow() must return bytes or None");
        rc = -1;
    } else if ((rc = outbuf_reserve(b, PyBytes_GET_SIZE(frame))) == 0) {
        outbuf_put(b, PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame));
        (*rendered)++;
    }
    Py_DECREF(frame);
    return rc;
}

/* Whether a line has the fast shape, <PRI>1 TIME HOST APP PROCID MSGID - MSG (version 1, no
 * STRUCTURED-DATA); fills sp with the offsets of its first seven spaces. */
static inline int
fast_shape(const char *s, Py_ssize_t n, Py_ssize_t *sp)
{
    return find_spaces(s, n, sp, 7) == 7 && sp[6] - sp[5] == 2 && s[sp[5] + 1] == '-'
           && sp[0] >= 2 && s[0] == '<' && s[sp[0] - 2] == '>' && s[sp[0] - 1] == '1';
}

/* Render lines into one bytes object of octet-counted frames. With a drain token (syslog):
 * "<PRI>1 TIME token APP PROCID - - MSG" plus a newline when MSG lacks one. Without (http,
 * token == NULL): "<PRI>1 TIME host APP PROCID - MSG". Lines not of the fast shape go
 * through slow(line). Returns (data, rendered, skipped). */
static PyObject *
render(PyObject *lines, PyObject *dtoken, PyObject *slow)
{
    const char *dt = dtoken ? PyBytes_AS_STRING(dtoken) : "host";
    Py_ssize_t dtlen = dtoken ? PyBytes_GET_SIZE(dtoken) : 4;
    int syslog = dtoken != NULL;
    Py_ssize_t rendered = 0, skipped = 0;
    outbuf b = {NULL, 0, 0};
    /* The size is read each round: slow() is Python and could change the list. */
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(lines); k++) {
        PyObject *line = PyList_GET_ITEM(lines, k);
        if (!PyBytes_Check(line)) {
            PyErr_SetString(PyExc_TypeError, "lines must be bytes");
            goto fail;
        }
        const char *s = PyBytes_AS_STRING(line);
        Py_ssize_t n = PyBytes_GET_SIZE(line);
        Py_ssize_t sp[7];
        if (!fast_shape(s, n, sp)) {
            Py_INCREF(line); /* ours while slow() runs */
            int rc = render_slow(&b, slow, line, &rendered, &skipped);
            Py_DECREF(line);
            if (rc < 0)
                goto fail;
            continue;
        }
        /* "<PRI>1 TIME " host-or-token " APP PROCID" sep MSG [newline] */
        const char *sep = syslog ? " - - " : " - ";
        Py_ssize_t seplen = syslog ? 5 : 3;
        int newline = syslog && s[n - 1] != '\n';
        Py_ssize_t body = sp[1] + 1 + dtlen + (sp[4] - sp[2]) + seplen + (n - sp[6] - 1) + newline;
        char digits[24];
        int dlen = snprintf(digits, sizeof digits, "%zd ", body);
        if (outbuf_reserve(&b, dlen + body) < 0)
            goto fail;
        outbuf_put(&b, digits, dlen);
        outbuf_put(&b, s, sp[1] + 1);
        outbuf_put(&b, dt, dtlen);
        outbuf_put(&b, s + sp[2], sp[4] - sp[2]);
        outbuf_put(&b, sep, seplen);
        outbuf_put(&b, s + sp[6] + 1, n - sp[6] - 1);
        if (newline)
            outbuf_put(&b, "\n", 1);
        rendered++;
    }
    PyObject *data = PyBytes_FromStringAndSize(b.data ? b.data : "", b.len);
    PyMem_Free(b.data);
    if (data == NULL)
        return NULL;
    return Py_BuildValue("Nnn", data, rendered, skipped);
fail:
    PyMem_Free(b.data);
    return NULL;
}

/* render_syslog(lines, drain_token, slow) -> (data, rendered, skipped): frames for a syslog
 * drain (see render). */
static PyObject *
render_syslog(PyObject *self, PyObject *args)
{
    PyObject *lines, *dtoken, *slow;
    if (!PyArg_ParseTuple(args, "O!SO:render_syslog", &PyList_Type, &lines, &dtoken, &slow))
        return NULL;
    return render(lines, dtoken, slow);
}

/* render_http(lines, slow) -> (data, rendered, skipped): the logplex-1 body of an HTTP drain
 * (see render). */
static PyObject *
render_http(PyObject *self, PyObject *args)
{
    PyObject *lines, *slow;
    if (!PyArg_ParseTuple(args, "O!O:render_http", &PyList_Type, &lines, &slow))
        return NULL;
    return render(lines, NULL, slow);
}

static PyMethodDef methods[] = {
    {"split_octets", split_octets, METH_VARARGS, "Split well-formed octet-counted frames."},
    {"route_frames", route_frames, METH_VARARGS, "Route frames by token, cooking each."},
    {"route_to", route_to, METH_VARARGS, "Cook frames posted with one token."},
    {"render_syslog", render_syslog, METH_VARARGS, "Render lines for a syslog drain."},
    {"render_http", render_http, METH_VARARGS, "Render lines as an HTTP drain's body."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "logrouter.protocol._speedups",
    "C versions of the relay path's per-line loops (see the pure-Python twins).", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
