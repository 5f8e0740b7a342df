/* send_many: one non-blocking send on each of many sockets, without the GIL. */
#include "speedups.h"

#include <errno.h>
#include <sys/socket.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

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
        long f = PyLong_AsLong(PyList_GET_ITEM(fds, i));
        if (f == -1 && PyErr_Occurred())
            goto done;
        if (!PyBytes_Check(data)) {
            PyErr_SetString(PyExc_TypeError, "datas must be bytes");
            goto done;
        }
        if (f < 0 || f > INT_MAX) {
            PyErr_SetString(PyExc_ValueError, "a file descriptor is out of range");
            goto done;
        }
        fd[i] = (int)f;
        buf[i] = PyBytes_AS_STRING(data);
        len[i] = PyBytes_GET_SIZE(data);
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        ssize_t r;
        do {
            r = send(fd[i], buf[i], (size_t)len[i], MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (r < 0 && errno == EINTR);
        if (r >= 0)
            sent[i] = r;
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            sent[i] = 0;
        else
            sent[i] = -(Py_ssize_t)errno;
    }
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
