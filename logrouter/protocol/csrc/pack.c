/* pack_chunks: a history's lines packed into msgpack chunks, mostly without the GIL. */
#include "speedups.h"

/* One chunk being made: lines[first : first + count] of the flattened input. */
typedef struct {
    Py_ssize_t first, count;
    char *data;      /* the packed chunk (PyMem_Raw), made without the GIL */
    Py_ssize_t len;
} packed_chunk;

/* A msgpack header at out: the marker byte, then n in `width` bytes, big-endian; returns its
 * length. */
static Py_ssize_t
put_header(char *out, unsigned char marker, Py_ssize_t n, int width)
{
    unsigned char *o = (unsigned char *)out;
    o[0] = marker;
    for (int i = 0; i < width; i++)
        o[1 + i] = (unsigned char)(n >> (8 * (width - 1 - i)));
    return 1 + width;
}

/* The msgpack header of an array of n items, written at out; returns its length. */
static Py_ssize_t
array_header(char *out, Py_ssize_t n)
{
    if (n <= 15) {
        out[0] = (char)(0x90 | n);
        return 1;
    }
    return n <= 0xffff ? put_header(out, 0xdc, n, 2) : put_header(out, 0xdd, n, 4);
}

/* The msgpack bin header of n bytes, written at out; returns its length. */
static Py_ssize_t
bin_header(char *out, Py_ssize_t n)
{
    if (n <= 0xff)
        return put_header(out, 0xc4, n, 1);
    return n <= 0xffff ? put_header(out, 0xc5, n, 2) : put_header(out, 0xc6, n, 4);
}

/* Pack one chunk (no GIL): -1 when a line is not exactly bytes or too big for msgpack,
 * -2 when out of memory, else 0. The lines are read in two passes, sizes then bytes; a
 * chunk's lines (a few tens of KiB) stay in cache between them. */
static int
pack_one(PyObject *const *lines, packed_chunk *c)
{
    Py_ssize_t size = 5;
    for (Py_ssize_t i = 0; i < c->count; i++) {
        if (i + 4 < c->count)
            PREFETCH(lines[c->first + i + 4]);
        PyObject *line = lines[c->first + i];
        if (Py_TYPE(line) != &PyBytes_Type)
            return -1;
        Py_ssize_t n = PyBytes_GET_SIZE(line);
        if (n > 0xffffffffLL)
            return -1;
        size += 5 + n;
    }
    char *out = PyMem_RawMalloc((size_t)size);
    if (out == NULL)
        return -2;
    Py_ssize_t at = array_header(out, c->count);
    for (Py_ssize_t i = 0; i < c->count; i++) {
        PyObject *line = lines[c->first + i];
        Py_ssize_t n = PyBytes_GET_SIZE(line);
        at += bin_header(out + at, n);
        memcpy(out + at, PyBytes_AS_STRING(line), (size_t)n);
        at += n;
    }
    c->data = out;
    c->len = at;
    return 0;
}

/* pack_chunks(groups, chunk_lines) -> list[bytes]
 *
 * For each list of bytes in `groups`, in order, its lines in consecutive slices of
 * `chunk_lines` (the last may hold fewer; an empty group gives none), each packed as
 * msgpack.packb(slice, use_bin_type=True) would: an array of bin. Returns the packed
 * chunks, every group's in turn.
 *
 * The lines are read and copied with the GIL released (the event loop goes on meanwhile):
 * only pointers are taken while it is held, never a reference to a line — reading each of
 * a busy node's scattered line objects is most of the work. So the caller must keep
 * `groups` and its lists alive and unchanged until the call returns (a history compaction
 * owns the lists it packs). A line that is not exactly bytes raises TypeError. */
PyObject *
lr_pack_chunks(PyObject *self, PyObject *args)
{
    PyObject *groups;
    Py_ssize_t chunk_lines;
    if (!PyArg_ParseTuple(args, "O!n:pack_chunks", &PyList_Type, &groups, &chunk_lines))
        return NULL;
    if (chunk_lines < 1) {
        PyErr_SetString(PyExc_ValueError, "chunk_lines must be at least 1");
        return NULL;
    }
    Py_ssize_t ngroups = PyList_GET_SIZE(groups), total = 0, nchunks = 0;
    for (Py_ssize_t g = 0; g < ngroups; g++) {
        PyObject *group = PyList_GET_ITEM(groups, g);
        if (!PyList_Check(group)) {
            PyErr_SetString(PyExc_TypeError, "groups must be lists of bytes");
            return NULL;
        }
        Py_ssize_t n = PyList_GET_SIZE(group);
        total += n;
        nchunks += (n + chunk_lines - 1) / chunk_lines;
    }
    PyObject **lines = PyMem_RawMalloc((size_t)(total ? total : 1) * sizeof(PyObject *));
    packed_chunk *chunks = PyMem_RawCalloc((size_t)(nchunks ? nchunks : 1), sizeof(packed_chunk));
    PyObject *out = NULL;
    if (lines == NULL || chunks == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t at = 0, c = 0;
    for (Py_ssize_t g = 0; g < ngroups; g++) {
        PyObject *group = PyList_GET_ITEM(groups, g);
        Py_ssize_t n = PyList_GET_SIZE(group);
        memcpy(lines + at, PySequence_Fast_ITEMS(group), (size_t)n * sizeof(PyObject *));
        for (Py_ssize_t first = 0; first < n; first += chunk_lines) {
            chunks[c].first = at + first;
            chunks[c].count = n - first < chunk_lines ? n - first : chunk_lines;
            c++;
        }
        at += n;
    }
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < nchunks && !failed; i++)
        failed = pack_one(lines, &chunks[i]);
    Py_END_ALLOW_THREADS
    if (failed == -1) {
        PyErr_SetString(PyExc_TypeError, "lines must be bytes (of at most 4 GiB)");
        goto done;
    }
    if (failed == -2) {
        PyErr_NoMemory();
        goto done;
    }
    out = PyList_New(nchunks);
    if (out == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < nchunks; i++) {
        PyObject *b = PyBytes_FromStringAndSize(chunks[i].data, chunks[i].len);
        if (b == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, i, b);
    }
done:
    if (chunks != NULL)
        for (Py_ssize_t i = 0; i < nchunks; i++)
            PyMem_RawFree(chunks[i].data);
    PyMem_RawFree(chunks);
    PyMem_RawFree(lines);
    return out;
}
