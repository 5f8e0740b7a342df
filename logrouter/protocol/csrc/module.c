/* The module: its method table and initialisation (see speedups.h). */
#include "speedups.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sys/mman.h>
#include <unistd.h>

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
} arena_span;

static PyObjectArenaAllocator base_arenas;
static int arenas_installed = 0;
static arena_span *kept = NULL;
static Py_ssize_t kept_count = 0, kept_max = 0, kept_cap = 0;

/* The arenas the object allocator holds now (handed out since keep_arenas was first called):
 * what release_free_pools walks. */
static arena_span *live = NULL;
static Py_ssize_t live_count = 0, live_cap = 0;

static void
live_add(void *ptr, size_t size)
{
    if (ptr == NULL)
        return;
    if (live_count == live_cap) {
        Py_ssize_t cap = live_cap ? 2 * live_cap : 256;
        arena_span *grown = PyMem_RawRealloc(live, (size_t)cap * sizeof(arena_span));
        if (grown == NULL)
            return; /* not walked: its free pools stay resident, nothing worse */
        live = grown;
        live_cap = cap;
    }
    live[live_count].ptr = ptr;
    live[live_count].size = size;
    live_count++;
}

static void
live_remove(void *ptr)
{
    for (Py_ssize_t i = live_count - 1; i >= 0; i--) {
        if (live[i].ptr == ptr) {
            live[i] = live[--live_count];
            return;
        }
    }
}

static void *
arena_alloc(void *ctx, size_t size)
{
    for (Py_ssize_t i = kept_count - 1; i >= 0; i--) {
        if (kept[i].size == size) {
            void *ptr = kept[i].ptr;
            kept[i] = kept[--kept_count];
            live_add(ptr, size);
            return ptr;
        }
    }
    void *ptr = base_arenas.alloc(base_arenas.ctx, size);
    live_add(ptr, size);
    return ptr;
}

static void
arena_free(void *ctx, void *ptr, size_t size)
{
    live_remove(ptr);
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
        arena_span *grown = PyMem_RawRealloc(kept, (size_t)slots * sizeof(arena_span));
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

/* release_free_pools() -> int
 *
 * Give the kernel back the memory of the object allocator's empty pools, and of the arenas
 * kept for reuse; returns the bytes released (0 where this cannot be done safely).
 *
 * After a burst the allocator's arenas are mostly empty pools, but an arena goes back to the
 * kernel only once every object in it is gone, and a few long-lived objects (a counter, a
 * chunk's tuple) allocated among a burst's lines keep hundreds of arenas mapped: measured at
 * ~340 MB of a 10,000-app node's ~760 MB once its history was compressed. This walks the
 * arenas handed out since keep_arenas installed its allocator, and for each pool with no
 * block in use drops all of it but the page holding its header (MADV_DONTNEED: the pages read
 * as zeros, and are faulted in again only when used) and marks the pool's size class unknown,
 * so that the allocator initialises it afresh when it uses it again rather than follow a free
 * list through the dropped pages. The header page stays: the allocator links free pools
 * through it.
 *
 * This relies on the object allocator's pool layout (CPython 3.10 to 3.13: 16 KiB pools in
 * 1 MiB arenas, the header struct below); a check of the pools in use at the first call
 * turns it off for good when the layout is not the one expected. Needs the GIL (the
 * allocator may not change meanwhile); takes ~2 ms per thousand pools released. */
#define POOL_BYTES (16 * 1024)
#define ARENA_BYTES (1024 * 1024)
#define DUMMY_SIZE_IDX 0xffff

typedef struct {
    union {
        void *_padding;
        unsigned int count;
    } ref;
    void *freeblock, *nextpool, *prevpool;
    unsigned int arenaindex, szidx, nextoffset, maxnextoffset;
} pool_head;

static int pools_checked = 0, pools_ok = 0;

/* The pools of live arena i: [*first, *end) in POOL_BYTES steps, from the first aligned
 * address (where the allocator puts its first pool); 0 when it is not a 1 MiB arena. */
static int
arena_pools(Py_ssize_t i, uintptr_t *first, uintptr_t *end)
{
    if (live[i].size != ARENA_BYTES)
        return 0;
    uintptr_t a = (uintptr_t)live[i].ptr;
    *first = (a + POOL_BYTES - 1) & ~(uintptr_t)(POOL_BYTES - 1);
    *end = a + ARENA_BYTES;
    return 1;
}

/* Whether the pools of the tracked arenas look as release_free_pools expects: every pool in
 * use (its count not zero) in the first tracked arena that has one has a size class of the
 * allocator (16-byte steps up to 512), the matching end offset and a carving offset within the
 * pool. Decided at the first call that finds such a pool. */
static void
check_pool_layout(void)
{
#if PY_VERSION_HEX >= 0x030A0000 && PY_VERSION_HEX < 0x030E0000 && defined(MADV_DONTNEED)
    for (Py_ssize_t i = 0; i < live_count; i++) {
        uintptr_t first, end;
        if (!arena_pools(i, &first, &end))
            continue;
        int used = 0, ok = 1;
        for (uintptr_t p = first; p + POOL_BYTES <= end; p += POOL_BYTES) {
            pool_head *pool = (pool_head *)p;
            if (pool->ref.count == 0)
                continue;
            unsigned int size = (pool->szidx + 1) * 16;
            if (pool->szidx >= 32 || pool->maxnextoffset != POOL_BYTES - size
                    || pool->nextoffset > POOL_BYTES || pool->ref.count > POOL_BYTES / size)
                ok = 0;
            used++;
        }
        if (used) {
            pools_ok = ok;
            pools_checked = 1;
            return;
        }
    }
#else
    pools_checked = 1;
#endif
}

static PyObject *
lr_release_free_pools(PyObject *self, PyObject *unused)
{
    Py_ssize_t released = 0;
    if (!pools_checked)
        check_pool_layout();
#if defined(MADV_DONTNEED)
    if (pools_ok) {
        long page = sysconf(_SC_PAGESIZE);
        if (page <= 0 || page >= POOL_BYTES || POOL_BYTES % page != 0)
            page = 0;
        for (Py_ssize_t i = 0; page && i < live_count; i++) {
            uintptr_t first, end;
            if (!arena_pools(i, &first, &end))
                continue;
            for (uintptr_t p = first; p + POOL_BYTES <= end; p += POOL_BYTES) {
                pool_head *pool = (pool_head *)p;
                /* in use; never carved (an untouched header reads as zeros); or done before */
                if (pool->ref.count != 0 || pool->maxnextoffset == 0
                        || pool->szidx == DUMMY_SIZE_IDX)
                    continue;
                if (madvise((void *)(p + (uintptr_t)page), POOL_BYTES - (size_t)page,
                            MADV_DONTNEED) == 0) {
                    pool->szidx = DUMMY_SIZE_IDX;
                    released += POOL_BYTES - page;
                }
            }
        }
        for (Py_ssize_t i = 0; i < kept_count; i++)
            if (madvise(kept[i].ptr, kept[i].size, MADV_DONTNEED) == 0)
                released += (Py_ssize_t)kept[i].size;
    }
#endif
    return PyLong_FromSsize_t(released);
}

/* trim_freed_memory() -> bool
 *
 * Give the kernel back the C heap's free memory (glibc's malloc_trim: free pages inside
 * the heaps too, not only at their top), with the GIL released. False where there is no
 * glibc. */
static PyObject *
lr_trim_freed_memory(PyObject *self, PyObject *unused)
{
#ifdef __GLIBC__
    Py_BEGIN_ALLOW_THREADS
    malloc_trim(0);
    Py_END_ALLOW_THREADS
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
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
    {"release_free_pools", lr_release_free_pools, METH_NOARGS,
     "Give back the memory of the object allocator's empty pools."},
    {"trim_freed_memory", lr_trim_freed_memory, METH_NOARGS,
     "Give back the C heap's free memory (glibc)."},
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
