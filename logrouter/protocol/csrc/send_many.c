/* send_many: one non-blocking send on each of many sockets, without the GIL. */
#include "speedups.h"

#include <errno.h>
#include <sys/socket.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

/* One non-blocking send(2) of buf[0:len] on fd (no GIL needed): the bytes the socket took,
 * 0 when it would block, or -errno when it failed. */
static Py_ssize_t
send_once(int fd, const char *buf, Py_ssize_t len)
{
    ssize_t r;
    do {
        r = send(fd, buf, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
    return -(Py_ssize_t)errno;
}

/* The file descriptor in `obj` (an int): 0, or -1 with an exception set. */
static int
socket_fd(PyObject *obj, int *fd)
{
    long f = PyLong_AsLong(obj);
    if (f == -1 && PyErr_Occurred())
        return -1;
    if (f < 0 || f > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "a file descriptor is out of range");
        return -1;
    }
    *fd = (int)f;
    return 0;
}

/* send_many(fds, datas) -> list
 *
 * For each i, one non-blocking send(2) of datas[i] (bytes) on the socket fds[i] (an int).
 * Returns one int per socket: the bytes the socket took (0 when it would block), or
 * -errno when the send failed. The GIL is released for the whole loop, so a worker thread
 * can do a round of sends while the event loop runs Python; the caller keeps `datas` alive
 * and the sockets open until it returns. */
PyObject *
lr_send_many(PyObject *self, PyObject *args)
{
    PyObject *fds, *datas;
    if (!PyArg_ParseTuple(args, "O!O!:send_many", &PyList_Type, &fds, &PyList_Type, &datas))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(fds);
    if (PyList_GET_SIZE(datas) != n) {
        PyErr_SetString(PyExc_ValueError, "fds and datas differ in length");
        return NULL;
    }
    int *fd = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(int));
    const char **buf = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(char *));
    Py_ssize_t *len = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(Py_ssize_t));
    Py_ssize_t *sent = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(Py_ssize_t));
    PyObject *out = NULL, *held = NULL;
    if (fd == NULL || buf == NULL || len == NULL || sent == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    held = PyList_GetSlice(datas, 0, n); /* our references while the GIL is released */
    if (held == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *data = PyList_GET_ITEM(held, i);
        if (!PyBytes_Check(data)) {
            PyErr_SetString(PyExc_TypeError, "datas must be bytes");
            goto done;
        }
        if (socket_fd(PyList_GET_ITEM(fds, i), &fd[i]) < 0)
            goto done;
        buf[i] = PyBytes_AS_STRING(data);
        len[i] = PyBytes_GET_SIZE(data);
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++)
        sent[i] = send_once(fd[i], buf[i], len[i]);
    Py_END_ALLOW_THREADS
    out = PyList_New(n);
    if (out == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PyLong_FromSsize_t(sent[i]);
        if (v == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, i, v);
    }
done:
    Py_XDECREF(held);
    PyMem_Free(fd);
    PyMem_Free(buf);
    PyMem_Free(len);
    PyMem_Free(sent);
    return out;
}

/* One write of render_send_syslog: where it goes, what it carries, and how it went. */
typedef struct {
    int fd;
    const char *token, *prefix;
    Py_ssize_t token_len, prefix_len;
    PyObject *lines;  /* a list of bytes (borrowed: the caller keeps it, unchanged) */
    char *data;       /* the rendered write (PyMem_Raw), kept only when partly sent */
    Py_ssize_t len;   /* its length */
    Py_ssize_t sent;  /* bytes the socket took, or -errno */
    int python;       /* a line is not of the fast shape (or not bytes): left to Python */
} syslog_write;

/* Lines ahead whose text render_send_one asks to be fetched (see PREFETCH). */
#define RENDER_AHEAD 4

/* Render write w (its prefix, then each line's frame) and send it, without the GIL: only
 * reads the bytes of objects the caller keeps alive and unchanged. */
static void
render_send_one(syslog_write *w)
{
    PyObject **items = ((PyListObject *)w->lines)->ob_item;
    Py_ssize_t count = PyList_GET_SIZE(w->lines);
    Py_ssize_t bound = w->prefix_len;
    for (Py_ssize_t k = 0; k < count; k++) {
        if (!PyBytes_Check(items[k])) {
            w->python = 1;
            return;
        }
        bound += FAST_FRAME_BOUND(PyBytes_GET_SIZE(items[k]), w->token_len);
    }
    char *data = PyMem_RawMalloc((size_t)(bound > 0 ? bound : 1));
    if (data == NULL) {
        w->python = 1; /* Python renders it, and reports the shortage if it persists */
        return;
    }
    memcpy(data, w->prefix, (size_t)w->prefix_len);
    Py_ssize_t len = w->prefix_len;
    for (Py_ssize_t k = 0; k < count; k++) {
        if (k + RENDER_AHEAD < count) { /* a line's text spans several cache lines */
            const char *next = PyBytes_AS_STRING(items[k + RENDER_AHEAD]);
            Py_ssize_t next_n = PyBytes_GET_SIZE(items[k + RENDER_AHEAD]);
            for (Py_ssize_t at = 0; at < next_n; at += 64)
                PREFETCH(next + at);
            PREFETCH(next + next_n - 1);
        }
        const char *s = PyBytes_AS_STRING(items[k]);
        Py_ssize_t n = PyBytes_GET_SIZE(items[k]), sp[7];
        if (!fast_shape(s, n, sp)) {
            PyMem_RawFree(data);
            w->python = 1;
            return;
        }
        len += render_fast_frame(data + len, s, n, sp, w->token, w->token_len, 1);
    }
    w->sent = send_once(w->fd, data, len);
    w->len = len;
    if (w->sent >= 0 && w->sent < len)
        w->data = data; /* the rest is Python's to send */
    else
        PyMem_RawFree(data);
}

/* render_send_syslog(fds, tokens, prefixes, batches) -> list
 *
 * For each i: render batches[i] (a list of cooked lines) for a syslog drain with token
 * tokens[i], as render_syslog does, after prefixes[i] (an L10 frame, or b""), and make one
 * non-blocking send(2) of it on the socket fds[i]. The GIL is released for the rendering
 * and the sends, so a worker thread does both while the event loop runs Python; the caller
 * keeps every argument alive and unchanged until it returns.
 *
 * Returns one item per write: None when a line of the batch is not of the fast shape
 * (nothing was sent: the caller renders that write in Python, where such lines are handled
 * or counted); else (sent, rest): sent is the bytes the socket took (0 when it would block)
 * or -errno when the send failed, and rest is None, or — when the socket took only part of
 * it — the whole rendered write as bytes (the caller sends it on from `sent`). */
PyObject *
lr_render_send_syslog(PyObject *self, PyObject *args)
{
    PyObject *fds, *tokens, *prefixes, *batches;
    if (!PyArg_ParseTuple(args, "O!O!O!O!:render_send_syslog", &PyList_Type, &fds, &PyList_Type,
                          &tokens, &PyList_Type, &prefixes, &PyList_Type, &batches))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(fds);
    if (PyList_GET_SIZE(tokens) != n || PyList_GET_SIZE(prefixes) != n
            || PyList_GET_SIZE(batches) != n) {
        PyErr_SetString(PyExc_ValueError, "fds, tokens, prefixes and batches differ in length");
        return NULL;
    }
    syslog_write *w = PyMem_Calloc((size_t)(n ? n : 1), sizeof(syslog_write));
    if (w == NULL)
        return PyErr_NoMemory();
    PyObject *out = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *token = PyList_GET_ITEM(tokens, i), *prefix = PyList_GET_ITEM(prefixes, i);
        PyObject *lines = PyList_GET_ITEM(batches, i);
        if (socket_fd(PyList_GET_ITEM(fds, i), &w[i].fd) < 0)
            goto done;
        if (!PyBytes_Check(token) || !PyBytes_Check(prefix) || !PyList_Check(lines)) {
            PyErr_SetString(PyExc_TypeError, "tokens and prefixes must be bytes, batches lists");
            goto done;
        }
        w[i].token = PyBytes_AS_STRING(token);
        w[i].token_len = PyBytes_GET_SIZE(token);
        w[i].prefix = PyBytes_AS_STRING(prefix);
        w[i].prefix_len = PyBytes_GET_SIZE(prefix);
        w[i].lines = lines;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++)
        render_send_one(&w[i]);
    Py_END_ALLOW_THREADS
    out = PyList_New(n);
    if (out == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item;
        if (w[i].python) {
            item = Py_NewRef(Py_None);
        } else if (w[i].data != NULL) {
            item = Py_BuildValue("(ny#)", w[i].sent, w[i].data, w[i].len);
        } else {
            item = Py_BuildValue("(nO)", w[i].sent, Py_None);
        }
        if (item == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, i, item);
    }
done:
    for (Py_ssize_t i = 0; i < n; i++)
        PyMem_RawFree(w[i].data);
    PyMem_Free(w);
    return out;
}
