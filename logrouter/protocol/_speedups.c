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
 *   render_tail    tailfmt._render_lines_py    (session rendering: text or SSE)
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
    if (n > 0) { /* nothing reserved yet (data NULL) when all so far was empty */
        memcpy(b->data + b->len, s, (size_t)n);
        b->len += n;
    }
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

/* Append `text` (already CR/LF-stripped at its end) as the data: fields of one SSE event:
 * every line break (CRLF, CR or LF) starts a new field. */
static void
put_sse_data(outbuf *b, const char *t, Py_ssize_t len)
{
    outbuf_put(b, "data: ", 6);
    Py_ssize_t start = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        char c = t[i];
        if (c == '\r' || c == '\n') {
            outbuf_put(b, t + start, i - start);
            outbuf_put(b, "\ndata: ", 7);
            if (c == '\r' && i + 1 < len && t[i + 1] == '\n')
                i++;
            start = i + 1;
        }
    }
    outbuf_put(b, t + start, len - start);
    outbuf_put(b, "\n", 1);
}

/* render_tail(lines, sse, first_id, idfunc, ps, source, slow) -> bytes
 *
 * Session rendering (tailfmt._render_lines_py): for each cooked line that passes the ps and
 * source filters, "TIME APP[PROCID]: MSG" plus a newline when MSG lacks one (text), or that as
 * one SSE event whose data: fields split it at line breaks, with "id: first_id + k" or
 * "id: idfunc(line)" when given. Lines not of the fast shape go to slow(line, k), which returns
 * their rendering (b"" to skip). */
static PyObject *
render_tail(PyObject *self, PyObject *args)
{
    PyObject *lines, *first_obj, *idfunc, *ps_obj, *source_obj, *slow;
    int sse;
    if (!PyArg_ParseTuple(args, "O!pOOOOO:render_tail", &PyList_Type, &lines, &sse, &first_obj,
                          &idfunc, &ps_obj, &source_obj, &slow))
        return NULL;
    long long first_id = 0;
    int numbered = first_obj != Py_None;
    if (numbered && (first_id = PyLong_AsLongLong(first_obj)) == -1 && PyErr_Occurred())
        return NULL;
    if (idfunc == Py_None)
        idfunc = NULL;
    if ((ps_obj != Py_None && !PyBytes_Check(ps_obj))
            || (source_obj != Py_None && !PyBytes_Check(source_obj))) {
        PyErr_SetString(PyExc_TypeError, "ps and source must be bytes or None");
        return NULL;
    }
    const char *ps = ps_obj != Py_None ? PyBytes_AS_STRING(ps_obj) : NULL;
    Py_ssize_t pslen = ps ? PyBytes_GET_SIZE(ps_obj) : 0;
    const char *src = source_obj != Py_None ? PyBytes_AS_STRING(source_obj) : NULL;
    Py_ssize_t srclen = src ? PyBytes_GET_SIZE(source_obj) : 0;
    outbuf b = {NULL, 0, 0};
    char *text = NULL;
    Py_ssize_t textcap = 0;
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(lines); k++) {
        PyObject *line = PyList_GET_ITEM(lines, k);
        if (!PyBytes_Check(line)) {
            PyErr_SetString(PyExc_TypeError, "lines must be bytes");
            goto fail;
        }
        Py_INCREF(line); /* ours while Python code (slow, idfunc) may run */
        const char *s = PyBytes_AS_STRING(line);
        Py_ssize_t n = PyBytes_GET_SIZE(line);
        Py_ssize_t sp[7];
        Py_ssize_t gt = 1;
        int fast = find_spaces(s, n, sp, 7) == 7 && s[0] == '<';
        if (fast) { /* <PRI>VERSION: digits, '>', digits; STRUCTURED-DATA "-" then a space */
            while (gt < sp[0] && s[gt] >= '0' && s[gt] <= '9')
                gt++;
            fast = gt >= 2 && gt < sp[0] - 1 && s[gt] == '>' && sp[6] == sp[5] + 2
                   && s[sp[5] + 1] == '-';
            for (Py_ssize_t i = gt + 1; fast && i < sp[0]; i++)
                fast = s[i] >= '0' && s[i] <= '9';
        }
        if (!fast) {
            PyObject *r = PyObject_CallFunction(slow, "On", line, k);
            Py_DECREF(line);
            if (r == NULL)
                goto fail;
            if (!PyBytes_Check(r)) {
                Py_DECREF(r);
                PyErr_SetString(PyExc_TypeError, "slow() must return bytes");
                goto fail;
            }
            if (outbuf_reserve(&b, PyBytes_GET_SIZE(r)) < 0) {
                Py_DECREF(r);
                goto fail;
            }
            outbuf_put(&b, PyBytes_AS_STRING(r), PyBytes_GET_SIZE(r));
            Py_DECREF(r);
            continue;
        }
        const char *time = s + sp[0] + 1, *app = s + sp[2] + 1, *procid = s + sp[3] + 1;
        Py_ssize_t timelen = sp[1] - sp[0] - 1, applen = sp[3] - sp[2] - 1;
        Py_ssize_t procidlen = sp[4] - sp[3] - 1;
        const char *msg = s + sp[6] + 1;
        Py_ssize_t msglen = n - sp[6] - 1;
        if ((src && (applen != srclen || memcmp(app, src, (size_t)srclen) != 0))
                || (ps && !(procidlen >= pslen && memcmp(procid, ps, (size_t)pslen) == 0
                            && (procidlen == pslen || procid[pslen] == '.')))) {
            Py_DECREF(line);
            continue;
        }
        /* text = "TIME APP[PROCID]: MSG" (+ "\n" when MSG lacks one) */
        Py_ssize_t textlen = timelen + applen + procidlen + msglen + 6;
        if (textlen > textcap) {
            char *grown = PyMem_Realloc(text, (size_t)textlen);
            if (grown == NULL) {
                Py_DECREF(line);
                PyErr_NoMemory();
                goto fail;
            }
            text = grown;
            textcap = textlen;
        }
        Py_ssize_t t = 0;
        memcpy(text + t, time, (size_t)timelen);
        t += timelen;
        text[t++] = ' ';
        memcpy(text + t, app, (size_t)applen);
        t += applen;
        text[t++] = '[';
        memcpy(text + t, procid, (size_t)procidlen);
        t += procidlen;
        text[t++] = ']';
        text[t++] = ':';
        text[t++] = ' ';
        memcpy(text + t, msg, (size_t)msglen);
        t += msglen;
        if (msglen == 0 || msg[msglen - 1] != '\n')
            text[t++] = '\n';
        if (!sse) {
            Py_DECREF(line);
            if (outbuf_reserve(&b, t) < 0)
                goto fail;
            outbuf_put(&b, text, t);
            continue;
        }
        while (t > 0 && (text[t - 1] == '\n' || text[t - 1] == '\r'))
            t--;
        PyObject *id = NULL;
        char digits[32];
        int dlen = 0;
        if (idfunc != NULL) {
            id = PyObject_CallOneArg(idfunc, line);
            if (id == NULL) {
                Py_DECREF(line);
                goto fail;
            }
            if (!PyBytes_Check(id)) {
                Py_DECREF(id);
                Py_DECREF(line);
                PyErr_SetString(PyExc_TypeError, "idfunc() must return bytes");
                goto fail;
            }
        } else if (numbered) {
            dlen = snprintf(digits, sizeof digits, "%lld", first_id + (long long)k);
        }
        Py_DECREF(line);
        int has_id = id != NULL || numbered;
        Py_ssize_t idlen = id ? PyBytes_GET_SIZE(id) : dlen;
        /* worst case: every byte a line break, each adding "\ndata: " */
        if (outbuf_reserve(&b, 6 + t * 7 + 1 + 5 + idlen + 1) < 0) {
            Py_XDECREF(id);
            goto fail;
        }
        put_sse_data(&b, text, t);
        if (has_id) {
            outbuf_put(&b, "id: ", 4);
            outbuf_put(&b, id ? PyBytes_AS_STRING(id) : digits, idlen);
            outbuf_put(&b, "\n", 1);
        }
        Py_XDECREF(id);
        outbuf_put(&b, "\n", 1);
    }
    PyMem_Free(text);
    PyObject *data = PyBytes_FromStringAndSize(b.data ? b.data : "", b.len);
    PyMem_Free(b.data);
    return data;
fail:
    PyMem_Free(text);
    PyMem_Free(b.data);
    return NULL;
}

static PyMethodDef methods[] = {
    {"split_octets", split_octets, METH_VARARGS, "Split well-formed octet-counted frames."},
    {"route_frames", route_frames, METH_VARARGS, "Route frames by token, cooking each."},
    {"route_to", route_to, METH_VARARGS, "Cook frames posted with one token."},
    {"render_syslog", render_syslog, METH_VARARGS, "Render lines for a syslog drain."},
    {"render_http", render_http, METH_VARARGS, "Render lines as an HTTP drain's body."},
    {"render_tail", render_tail, METH_VARARGS, "Render lines for a session (text or SSE)."},
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
