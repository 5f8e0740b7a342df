/* Drain and session renderings: twins of drainfmt._render_syslog_py, drainfmt._render_http_py
 * and tailfmt._render_lines_py. */
#include "speedups.h"

/* The bytes object the renderers write into: render() sizes it up front to what its lines
 * can need, render_tail() starts small; either grows it by doubling and cuts it to size at
 * the end, so the result is never copied whole. */
typedef struct {
    PyObject *obj;
    Py_ssize_t len, cap;
} outbytes;

/* Room for `more` bytes past len: 0, or -1 (exception set; obj released). */
static int
outbytes_reserve(outbytes *b, Py_ssize_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap * 2 > b->len + more ? b->cap * 2 : b->len + more;
    if (_PyBytes_Resize(&b->obj, cap) < 0)
        return -1; /* _PyBytes_Resize released obj */
    b->cap = cap;
    return 0;
}

static inline void
outbytes_put(outbytes *b, const char *s, Py_ssize_t n)
{
    memcpy(PyBytes_AS_STRING(b->obj) + b->len, s, (size_t)n);
    b->len += n;
}

/* Append slow(line)'s frame to b (rendered) or count it skipped (None). 0, or -1 on error
 * (obj may have been released: see outbytes_reserve). */
static int
render_slow(outbytes *b, PyObject *slow, PyObject *line, Py_ssize_t *rendered, Py_ssize_t *skipped)
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
    } else if ((rc = outbytes_reserve(b, PyBytes_GET_SIZE(frame))) == 0) {
        outbytes_put(b, PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame));
        (*rendered)++;
    }
    Py_DECREF(frame);
    return rc;
}

/* Render lines into one bytes object of octet-counted frames. With a drain token (syslog):
 * "<PRI>1 TIME token APP PROCID - - MSG" plus a newline when MSG lacks one. Without (http,
 * token == NULL): "<PRI>1 TIME host APP PROCID - MSG". Lines not of the fast shape go
 * through slow(line). Returns (data, rendered, skipped).
 *
 * The result is allocated once, at the most the fast shape can need (each line plus the
 * token and a length prefix), written in place and cut to size: no growing copies and no
 * final copy of the whole batch. */
static PyObject *
render(PyObject *lines, PyObject *dtoken, PyObject *slow)
{
    const char *dt = dtoken ? PyBytes_AS_STRING(dtoken) : "host";
    Py_ssize_t dtlen = dtoken ? PyBytes_GET_SIZE(dtoken) : 4;
    int syslog = dtoken != NULL;
    Py_ssize_t rendered = 0, skipped = 0, bound = 0;
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(lines); k++) {
        PyObject *line = PyList_GET_ITEM(lines, k);
        if (!PyBytes_Check(line)) {
            PyErr_SetString(PyExc_TypeError, "lines must be bytes");
            return NULL;
        }
        bound += FAST_FRAME_BOUND(PyBytes_GET_SIZE(line), dtlen);
    }
    outbytes b = {PyBytes_FromStringAndSize(NULL, bound > 0 ? bound : 1), 0, bound > 0 ? bound : 1};
    if (b.obj == NULL)
        return NULL;
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
        if (outbytes_reserve(&b, FAST_FRAME_BOUND(n, dtlen)) < 0)
            goto fail;
        b.len += render_fast_frame(PyBytes_AS_STRING(b.obj) + b.len, s, n, sp, dt, dtlen, syslog);
        rendered++;
    }
    if (_PyBytes_Resize(&b.obj, b.len) < 0)
        return NULL;
    return Py_BuildValue("Nnn", b.obj, rendered, skipped);
fail:
    Py_XDECREF(b.obj);
    return NULL;
}

/* render_syslog(lines, drain_token, slow) -> (data, rendered, skipped): frames for a syslog
 * drain (see render). */
PyObject *
lr_render_syslog(PyObject *self, PyObject *args)
{
    PyObject *lines, *dtoken, *slow;
    if (!PyArg_ParseTuple(args, "O!SO:render_syslog", &PyList_Type, &lines, &dtoken, &slow))
        return NULL;
    return render(lines, dtoken, slow);
}

/* render_http(lines, slow) -> (data, rendered, skipped): the logplex-1 body of an HTTP drain
 * (see render). */
PyObject *
lr_render_http(PyObject *self, PyObject *args)
{
    PyObject *lines, *slow;
    if (!PyArg_ParseTuple(args, "O!O:render_http", &PyList_Type, &lines, &slow))
        return NULL;
    return render(lines, NULL, slow);
}

/* Append `text` (already CR/LF-stripped at its end) as the data: fields of one SSE event:
 * every line break (CRLF, CR or LF) starts a new field. */
static void
put_sse_data(outbytes *b, const char *t, Py_ssize_t len)
{
    outbytes_put(b, "data: ", 6);
    Py_ssize_t start = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        char c = t[i];
        if (c == '\r' || c == '\n') {
            outbytes_put(b, t + start, i - start);
            outbytes_put(b, "\ndata: ", 7);
            if (c == '\r' && i + 1 < len && t[i + 1] == '\n')
                i++;
            start = i + 1;
        }
    }
    outbytes_put(b, t + start, len - start);
    outbytes_put(b, "\n", 1);
}

/* render_tail(lines, sse, first_id, idfunc, ps, source, slow) -> bytes
 *
 * Session rendering (tailfmt._render_lines_py): for each cooked line that passes the ps and
 * source filters, "TIME APP[PROCID]: MSG" plus a newline when MSG lacks one (text), or that as
 * one SSE event whose data: fields split it at line breaks, with "id: first_id + k" or
 * "id: idfunc(line)" when given. Lines not of the fast shape go to slow(line, k), which returns
 * their rendering (b"" to skip). */
PyObject *
lr_render_tail(PyObject *self, PyObject *args)
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
    outbytes b = {PyBytes_FromStringAndSize(NULL, 4096), 0, 4096};
    if (b.obj == NULL)
        return NULL;
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
            if (outbytes_reserve(&b, PyBytes_GET_SIZE(r)) < 0) {
                Py_DECREF(r);
                goto fail;
            }
            outbytes_put(&b, PyBytes_AS_STRING(r), PyBytes_GET_SIZE(r));
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
            if (outbytes_reserve(&b, t) < 0)
                goto fail;
            outbytes_put(&b, text, t);
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
            dlen = put_decimal(digits, first_id + (long long)k, 0);
        }
        Py_DECREF(line);
        int has_id = id != NULL || numbered;
        Py_ssize_t idlen = id ? PyBytes_GET_SIZE(id) : dlen;
        /* worst case: every byte a line break, each adding "\ndata: " */
        if (outbytes_reserve(&b, 6 + t * 7 + 1 + 5 + idlen + 1) < 0) {
            Py_XDECREF(id);
            goto fail;
        }
        put_sse_data(&b, text, t);
        if (has_id) {
            outbytes_put(&b, "id: ", 4);
            outbytes_put(&b, id ? PyBytes_AS_STRING(id) : digits, idlen);
            outbytes_put(&b, "\n", 1);
        }
        Py_XDECREF(id);
        outbytes_put(&b, "\n", 1);
    }
    PyMem_Free(text);
    if (_PyBytes_Resize(&b.obj, b.len) < 0)
        return NULL;
    return b.obj;
fail:
    PyMem_Free(text);
    Py_XDECREF(b.obj); /* NULL when a failed resize released it */
    return NULL;
}
