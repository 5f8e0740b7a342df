/* The module: its method table and initialisation (see speedups.h). */
#include "speedups.h"

static PyMethodDef methods[] = {
    {"split_octets", lr_split_octets, METH_VARARGS, "Split well-formed octet-counted frames."},
    {"route_frames", lr_route_frames, METH_VARARGS, "Route frames by token, cooking each."},
    {"route_to", lr_route_to, METH_VARARGS, "Cook frames posted with one token."},
    {"render_syslog", lr_render_syslog, METH_VARARGS, "Render lines for a syslog drain."},
    {"render_http", lr_render_http, METH_VARARGS, "Render lines as an HTTP drain's body."},
    {"render_tail", lr_render_tail, METH_VARARGS, "Render lines for a session (text or SSE)."},
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
