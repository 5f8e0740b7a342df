/* The module: its method table and initialisation (see speedups.h). */
#include "speedups.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

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

/* keep_arenas(max_bytes) -> None
 *
 * Keep up to max_bytes of the object allocator's freed arenas for reuse instead of
 * unmapping them. A relay creates and frees tens of thousands of short-lived bytes objects
 * per read; with the default allocator the arenas they empty go back to the kernel and the
 * next read faults fresh zeroed pages in again (a quarter of the routing time, measured).
 * Arenas past the bound are unmapped as before. Process-wide; later calls change the bound
 * (0 releases what is kept). */
typedef struct {
    void *ptr;
    size_t size;
} kept_arena;

static PyObjectArenaAllocator base_arenas;
static int arenas_installed = 0;
static kept_arena *kept = NULL;
static Py_ssize_t kept_count = 0, kept_max = 0, kept_cap = 0;

static void *
arena_alloc(void *ctx, size_t size)
{
    for (Py_ssize_t i = kept_count - 1; i >= 0; i--) {
        if (kept[i].size == size) {
            void *ptr = kept[i].ptr;
            kept[i] = kept[--kept_count];
            return ptr;
        }
    }
    return base_arenas.alloc(base_arenas.ctx, size);
}

static void
arena_free(void *ctx, void *ptr, size_t size)
{
    if (kept_count < kept_max) {
        kept[kept_count].ptr = ptr;
        kept[kept_count].size = size;
        kept_count++;
        return;
    }
    base_arenas.free(base_arenas.ctx, ptr, size);
}

static PyObject *
lr_keep_arenas(PyObject *self, PyObject *arg)
{
    Py_ssize_t max_bytes = PyLong_AsSsize_t(arg);
    if (max_bytes == -1 && PyErr_Occurred())
        return NULL;
    if (max_bytes < 0) {
        PyErr_SetString(PyExc_ValueError, "max_bytes must be >= 0");
        return NULL;
    }
    Py_ssize_t slots = max_bytes / (1024 * 1024); /* CPython 3.10+ arenas are 1 MiB */
    if (slots > kept_cap) {
        kept_arena *grown = PyMem_RawRealloc(kept, (size_t)slots * sizeof(kept_arena));
        if (grown == NULL)
            return PyErr_NoMemory();
        kept = grown;
        kept_cap = slots;
    }
    kept_max = slots;
    while (kept_count > kept_max) {
        kept_count--;
        base_arenas.free(base_arenas.ctx, kept[kept_count].ptr, kept[kept_count].size);
    }
    if (!arenas_installed) {
        PyObject_GetArenaAllocator(&base_arenas);
        PyObjectArenaAllocator ours = {NULL, arena_alloc, arena_free};
        PyObject_SetArenaAllocator(&ours);
        arenas_installed = 1;
    }
    Py_RETURN_NONE;
}

/* hold_freed_memory(max_bytes) -> bool
 *
 * Ask the C allocator (glibc) to keep up to about max_bytes of freed memory instead of
 * returning it to the kernel at once: blocks below max_bytes (a 4 MiB socket read, a batch
 * of rendered frames) come from the heap rather than a fresh mapping each time, and the heap
 * is trimmed only past twice max_bytes of free space at its top. False where there is no
 * glibc (nothing changes). */
static PyObject *
lr_hold_freed_memory(PyObject *self, PyObject *arg)
{
    long max_bytes = PyLong_AsLong(arg);
    if (max_bytes == -1 && PyErr_Occurred())
        return NULL;
    if (max_bytes < 0 || max_bytes > (1L << 30)) {
        PyErr_SetString(PyExc_ValueError, "max_bytes must be between 0 and 1 GiB");
        return NULL;
    }
#ifdef __GLIBC__
    if (mallopt(M_MMAP_THRESHOLD, (int)max_bytes) && mallopt(M_TRIM_THRESHOLD, (int)(2 * max_bytes))
            && mallopt(M_TOP_PAD, (int)max_bytes))
        Py_RETURN_TRUE;
#endif
    Py_RETURN_FALSE;
}

static PyMethodDef methods[] = {
    {"split_octets", lr_split_octets, METH_VARARGS, "Split well-formed octet-counted frames."},
    {"route_frames", lr_route_frames, METH_VARARGS, "Route frames by token, cooking each."},
    {"split_route", lr_split_route, METH_VARARGS, "Split octet-counted frames and route them."},
    {"route_to", lr_route_to, METH_VARARGS, "Cook frames posted with one token."},
    {"render_syslog", lr_render_syslog, METH_VARARGS, "Render lines for a syslog drain."},
    {"render_http", lr_render_http, METH_VARARGS, "Render lines as an HTTP drain's body."},
    {"render_tail", lr_render_tail, METH_VARARGS, "Render lines for a session (text or SSE)."},
    {"send_many", lr_send_many, METH_VARARGS, "One non-blocking send per socket, GIL released."},
    {"render_send_syslog", lr_render_send_syslog, METH_VARARGS,
     "Render syslog drain writes and send each, GIL released."},
    {"pack_chunks", lr_pack_chunks, METH_VARARGS, "Pack lines into msgpack chunks, GIL released."},
    {"untrack", lr_untrack, METH_O, "Take a container of bytes out of the cyclic GC."},
    {"keep_arenas", lr_keep_arenas, METH_O, "Reuse freed object-allocator arenas (a bound)."},
    {"hold_freed_memory", lr_hold_freed_memory, METH_O, "Keep freed C-heap memory (glibc)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "logrouter.protocol._speedups",
    "C versions of the relay path's per-line loops (see the pure-Python twins).", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&RouteCacheType) < 0)
        return NULL;
    PyObject *mod = PyModule_Create(&module);
    if (mod == NULL)
        return NULL;
    Py_INCREF(&RouteCacheType);
    if (PyModule_AddObject(mod, "RouteCache", (PyObject *)&RouteCacheType) < 0) {
        Py_DECREF(&RouteCacheType);
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
