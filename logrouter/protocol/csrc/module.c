/* The module: its method table and initialisation (see speedups.h). */
#include "speedups.h"

/* untrack(obj) -> None
 *
 * Take `obj` out of the cyclic garbage collector's lists. For containers that only ever
 * hold bytes (a history's raw ring): they cannot be part of a cycle, and a full
 * collection would otherwise visit each of their items, millions on a busy node.
 * Containers that do not re-track themselves (deque, list) stay untracked; dealloc
 * handles an untracked object. */
static PyObject *
lr_untrack(PyObject *self, PyObject *obj)
{
    if (PyObject_IS_GC(obj) && PyObject_GC_IsTracked(obj))
        PyObject_GC_UnTrack(obj);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"split_octets", lr_split_octets, METH_VARARGS, "Split well-formed octet-counted frames."},
    {"route_frames", lr_route_frames, METH_VARARGS, "Route frames by token, cooking each."},
    {"route_to", lr_route_to, METH_VARARGS, "Cook frames posted with one token."},
    {"render_syslog", lr_render_syslog, METH_VARARGS, "Render lines for a syslog drain."},
    {"render_http", lr_render_http, METH_VARARGS, "Render lines as an HTTP drain's body."},
    {"render_tail", lr_render_tail, METH_VARARGS, "Render lines for a session (text or SSE)."},
    {"untrack", lr_untrack, METH_O, "Take a container of bytes out of the cyclic GC."},
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
