/* Framing, routing and cooking: twins of framing._split_octets_py,
 * token_routing._route_frames_py, token_routing._split_route_py and
 * token_routing._route_to_py. */
#include "speedups.h"

/* The octet-counted frame at s[pos:n] ("LEN SP MSG", LEN without a leading zero, at most
 * MAX_LEN_DIGITS digits and max_frame): 1 with its message at s[*start:*start + *length],
 * 0 when what is at pos is not such a frame (or pos is at n), -1 when it is but has not all
 * arrived. */
static inline int
next_octet_frame(const char *s, Py_ssize_t n, Py_ssize_t pos, Py_ssize_t max_frame,
                 Py_ssize_t *start, Py_ssize_t *length)
{
    if (pos >= n || s[pos] < '1' || s[pos] > '9')
        return 0;
    Py_ssize_t limit = pos + MAX_LEN_DIGITS + 1;
    if (limit > n)
        limit = n;
    Py_ssize_t len = 0, i = pos;
    while (i < limit && s[i] >= '0' && s[i] <= '9') {
        len = len * 10 + (s[i] - '0');
        i++;
    }
    if (i >= limit || s[i] != ' ' || len > max_frame)
        return 0;
    if (i + 1 + len > n)
        return -1;
    *start = i + 1;
    *length = len;
    return 1;
}

/* split_octets(buf, pos, max_frame, out) -> int
 *
 * Append to `out` every well-formed octet-counted frame ("LEN SP MSG", LEN without a
 * leading zero, at most max_frame bytes) from buf[pos:], and return the position after
 * the last one: len(buf) when all was consumed, the start of the first frame that is not
 * of that shape, or -(pos + 1) when the frame at pos is of that shape but incomplete. */
PyObject *
lr_split_octets(PyObject *self, PyObject *args)
{
    PyObject *buf, *out;
    Py_ssize_t pos, max_frame;
    if (!PyArg_ParseTuple(args, "SnnO!:split_octets", &buf, &pos, &max_frame, &PyList_Type, &out))
        return NULL;
    const char *s = PyBytes_AS_STRING(buf);
    Py_ssize_t n = PyBytes_GET_SIZE(buf);
    if (pos < 0)
        pos = 0;
    Py_ssize_t start, length;
    int found;
    while ((found = next_octet_frame(s, n, pos, max_frame, &start, &length)) > 0) {
        PyObject *frame = PyBytes_FromStringAndSize(s + start, length);
        if (frame == NULL)
            return NULL;
        int rc = PyList_Append(out, frame);
        Py_DECREF(frame);
        if (rc < 0)
            return NULL;
        pos = start + length;
    }
    return PyLong_FromSsize_t(found < 0 ? -(pos + 1) : pos);
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

/* One slot of a token table: a token seen, what `tokens` gave for it (NULL: not a known
 * token) and, while `stamp` is the table's current call, its channel's group list. */
typedef struct {
    uint64_t hash;
    uint64_t stamp;   /* the generation `group` belongs to (0: none) */
    PyObject *token;  /* bytes, owned; NULL marks an empty slot */
    PyObject *entry;  /* the (channel, name) tuple, owned, or NULL when unknown */
    PyObject *name;   /* entry's name (borrowed from entry) */
    PyObject *group;  /* groups[channel] for call `stamp`, owned; NULL otherwise */
} token_slot;

/* The token table route_frames and split_route look tokens up in: made for one call, or
 * kept across calls by a RouteCache. A slot's group is fetched from `groups` once per
 * `call` (a generation: one call, or with a RouteCache every call given the same groups
 * dict) and released when that generation ends. */
typedef struct {
    token_slot *slots;
    Py_ssize_t size;          /* a power of two */
    uint64_t call;            /* the current generation (slots stamped with it hold a group) */
    PyObject *groups;         /* the current call's groups (borrowed for the call) */
    Py_ssize_t *touched;      /* slots given a group in this generation */
    Py_ssize_t touched_len, touched_cap;
    Py_ssize_t used;          /* slots holding a token (an empty table is cleared at once) */
    Py_ssize_t max_kept;      /* longer tokens are looked up for their frame alone */
} token_table;

/* Tokens longer than this are looked up for the frame alone, never kept by a RouteCache
 * (a token is "t." and a UUID, 38 bytes; a stream of long made-up APP-NAMEs must not fill a
 * node's cache with their bytes). */
#define MAX_KEPT_TOKEN 64

/* The slots of a RouteCache: enough for a node's busy tokens, 48 bytes each (768 KiB). */
#define ROUTE_CACHE_SLOTS 16384

static inline uint64_t
token_hash(const char *s, Py_ssize_t n)
{
    /* Eight bytes a step, each word mixed in with a multiply (a token is ~38 bytes: five
     * steps where a byte-wise hash takes 38 dependent ones). */
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    uint64_t tail = 0;
    memcpy(&tail, s + i, (size_t)(n - i));
    h = (h ^ tail) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

/* Empty `slot` (its group too, whatever call it belongs to). */
static void
release_slot(token_slot *slot)
{
    slot->stamp = 0;
    Py_CLEAR(slot->group);
    slot->name = NULL;
    Py_CLEAR(slot->entry);
    Py_CLEAR(slot->token);
}

/* Empty every slot of `table` (nothing to do when none holds a token: a node that changes
 * its tokens one by one, as a resync does, clears an empty cache each time). */
static void
release_slots(token_table *table)
{
    if (table->slots == NULL || table->used == 0)
        return;
    for (Py_ssize_t i = 0; i < table->size; i++)
        release_slot(&table->slots[i]);
    table->used = 0;
}

/* Give up the groups fetched from the current groups dict (the call, or with a RouteCache
 * every call since that dict was first passed, is over). */
static void
release_groups(token_table *table)
{
    for (Py_ssize_t i = 0; i < table->touched_len; i++) {
        token_slot *slot = &table->slots[table->touched[i]];
        if (slot->stamp == table->call) {
            slot->stamp = 0;
            Py_CLEAR(slot->group);
        }
    }
    table->touched_len = 0;
    table->groups = NULL;
}

/* Fill the empty `slot` for token s[0:n] from `tokens`. 0, or -1 with an exception set. */
static int
fill_slot(token_slot *slot, uint64_t h, const char *s, Py_ssize_t n, PyObject *tokens)
{
    PyObject *token = PyBytes_FromStringAndSize(s, n);
    if (token == NULL)
        return -1;
    PyObject *entry = PyDict_GetItemWithError(tokens, token);
    if (entry == NULL && PyErr_Occurred()) {
        Py_DECREF(token);
        return -1;
    }
    if (entry != NULL) {
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2
                || !PyBytes_Check(PyTuple_GET_ITEM(entry, 1))) {
            PyErr_SetString(PyExc_TypeError, "tokens values must be (channel, bytes name)");
            Py_DECREF(token);
            return -1;
        }
        Py_INCREF(entry);
    }
    slot->hash = h;
    slot->token = token;
    slot->entry = entry;
    slot->name = entry != NULL ? PyTuple_GET_ITEM(entry, 1) : NULL;
    return 0;
}

/* Give the known token's `slot` its channel's group of this call: groups[channel], made on
 * first use. `index` is recorded so the group is released when the call ends (-1: the
 * caller releases it). 0, or -1 with an exception set. */
static int
fetch_group(token_table *table, token_slot *slot, Py_ssize_t index)
{
    PyObject *entry = slot->entry;
    Py_INCREF(entry); /* a channel's __eq__ below could change `tokens` */
    PyObject *channel = PyTuple_GET_ITEM(entry, 0);
    PyObject *group = PyDict_GetItemWithError(table->groups, channel);
    if (group == NULL) {
        if (PyErr_Occurred() || (group = PyList_New(0)) == NULL
                || PyDict_SetItem(table->groups, channel, group) < 0) {
            Py_XDECREF(group);
            Py_DECREF(entry);
            return -1;
        }
    } else {
        Py_INCREF(group);
    }
    Py_DECREF(entry);
    if (index >= 0) {
        if (table->touched_len == table->touched_cap) {
            Py_ssize_t cap = table->touched_cap ? 2 * table->touched_cap : 64;
            Py_ssize_t *grown = PyMem_Realloc(table->touched, (size_t)cap * sizeof(Py_ssize_t));
            if (grown == NULL) {
                Py_DECREF(group);
                PyErr_NoMemory();
                return -1;
            }
            table->touched = grown;
            table->touched_cap = cap;
        }
        table->touched[table->touched_len++] = index;
    }
    Py_XSETREF(slot->group, group);
    slot->stamp = table->call;
    return 0;
}

/* The slot for token s[0:n] (`h`: its token_hash), with its group when the token is known:
 * a hit, or a slot filled now from `tokens`. A token longer than the table's `max_kept` goes
 * into `scratch` instead (the caller empties it). NULL with an exception set on error. A full
 * probe window evicts its first slot. */
static token_slot *
lookup_token(token_table *table, const char *s, Py_ssize_t n, uint64_t h, PyObject *tokens,
             token_slot *scratch)
{
    Py_ssize_t mask = table->size - 1;
    Py_ssize_t first = (Py_ssize_t)(h & (uint64_t)mask);
    token_slot *slot = NULL;
    if (n > table->max_kept) {
        if (fill_slot(scratch, h, s, n, tokens) < 0)
            return NULL;
        if (scratch->entry != NULL && fetch_group(table, scratch, -1) < 0)
            return NULL;
        return scratch;
    }
    for (Py_ssize_t probe = 0; probe < 8; probe++) {
        token_slot *candidate = &table->slots[(first + probe) & mask];
        if (candidate->token == NULL) {
            slot = candidate;
            break;
        }
        if (candidate->hash == h && PyBytes_GET_SIZE(candidate->token) == n
                && memcmp(PyBytes_AS_STRING(candidate->token), s, (size_t)n) == 0) {
            if (candidate->entry != NULL && candidate->stamp != table->call
                    && fetch_group(table, candidate, candidate - table->slots) < 0)
                return NULL;
            return candidate;
        }
    }
    if (slot == NULL) {
        slot = &table->slots[first]; /* the window is full: evict the home slot */
        release_slot(slot);
        table->used--;
    }
    if (fill_slot(slot, h, s, n, tokens) < 0)
        return NULL;
    table->used++;
    if (slot->entry != NULL && fetch_group(table, slot, slot - table->slots) < 0)
        return NULL;
    return slot;
}

/* What route_frames and split_route count: [0] routed, [1] not syslog, [2] no token,
 * [3] unknown token. */
enum { ROUTED, NOT_SYSLOG, NO_TOKEN, UNKNOWN_TOKEN };

/* A frame about to be routed: where it is, its first four spaces (`fields` of them found)
 * and, with all four, its token's hash. */
typedef struct {
    const char *s;
    Py_ssize_t n;
    Py_ssize_t sp[4];
    int fields;
    uint64_t h;
} parsed_frame;

static inline void
parse_frame(parsed_frame *f, const char *s, Py_ssize_t n)
{
    f->s = s;
    f->n = n;
    f->fields = find_spaces(s, n, f->sp, 4);
    if (f->fields == 4)
        f->h = token_hash(s + f->sp[2] + 1, f->sp[3] - f->sp[2] - 1);
}

/* Route the parsed frame `f`: append it cooked to its channel's group, or count why not.
 * The frame's bytes must stay alive and unchanged meanwhile (a lookup may run Python code).
 * 0, or -1 with an exception set. */
static int
route_parsed(const parsed_frame *f, token_table *table, PyObject *tokens, Py_ssize_t *counts)
{
    const char *s = f->s;
    const Py_ssize_t *sp = f->sp;
    if (f->fields < 4) {
        counts[NOT_SYSLOG]++;
        return 0;
    }
    token_slot scratch = {0};
    Py_ssize_t token_len = sp[3] - sp[2] - 1;
    token_slot *slot = lookup_token(table, s + sp[2] + 1, token_len, f->h, tokens, &scratch);
    int rc = 0;
    if (slot == NULL) {
        rc = -1;
    } else if (slot->entry == NULL) {
        if (token_len >= 2 && s[sp[2] + 1] == 't' && s[sp[2] + 2] == '.')
            counts[UNKNOWN_TOKEN]++;
        else
            counts[NO_TOKEN]++;
    } else {
        PyObject *cooked = splice(s, f->n, sp[2] + 1, sp[3], slot->name);
        if (cooked == NULL || PyList_Append(slot->group, cooked) < 0)
            rc = -1;
        else
            counts[ROUTED]++;
        Py_XDECREF(cooked);
    }
    release_slot(&scratch);
    return rc;
}

static int
route_one(const char *s, Py_ssize_t n, token_table *table, PyObject *tokens,
          Py_ssize_t *counts)
{
    parsed_frame f;
    parse_frame(&f, s, n);
    return route_parsed(&f, table, tokens, counts);
}

/* Look-ahead for split_route: with thousands of apps a frame's slot, its token's bytes, its
 * name and its channel's list are each far apart in memory and rarely in cache, and routing
 * one frame waits for each in turn. So the frames ahead are prepared in stages, each issuing
 * loads the next stage will need: three frames ahead the home slot is fetched; two ahead, a
 * slot whose hash matches has its token, name and list fetched; one ahead, the end of that
 * list's items (where the append writes). They are only hints: a guess that turns out wrong
 * (another slot, a list replaced meanwhile) costs a load, never a result. */
#define LOOK_AHEAD 3

static inline token_slot *
home_slot(const token_table *table, const parsed_frame *f)
{
    return &table->slots[(Py_ssize_t)(f->h & (uint64_t)(table->size - 1))];
}

/* The hints for `f`, `stage` frames ahead of the one being routed (LOOK_AHEAD: its home
 * slot; 2: what a matching slot points to; 1: where its list's next item goes). */
static inline void
prefetch_stage(const token_table *table, const parsed_frame *f, int stage)
{
    if (f->fields < 4)
        return;
    token_slot *slot = home_slot(table, f);
    if (stage == LOOK_AHEAD) {
        PREFETCH(slot);
        PREFETCH((const char *)slot + sizeof(token_slot) - 1);
        return;
    }
    if (slot->hash != f->h || slot->token == NULL)
        return;
    if (stage == 2) {
        PREFETCH(PyBytes_AS_STRING(slot->token));
        if (slot->name != NULL)
            PREFETCH(slot->name);
        if (slot->group != NULL)
            PREFETCH(slot->group);
    } else if (slot->group != NULL && slot->stamp == table->call
               && PyList_CheckExact(slot->group)) {
        PyListObject *list = (PyListObject *)slot->group;
        if (Py_SIZE(list) < list->allocated)
            PREFETCH_W(&list->ob_item[Py_SIZE(list)]);
    }
}

/* A table for one call: at least 16 slots, about two per expected frame, at most 16,384.
 * -1 with MemoryError set on failure. */
static int
call_table(token_table *table, Py_ssize_t frames, PyObject *groups)
{
    Py_ssize_t want = 2 * frames;
    memset(table, 0, sizeof(*table));
    table->size = 16;
    while (table->size < want && table->size < 16384)
        table->size *= 2;
    table->slots = PyMem_Calloc((size_t)table->size, sizeof(token_slot));
    if (table->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    table->call = 1;
    table->groups = groups;
    table->max_kept = PY_SSIZE_T_MAX; /* the table goes with the call */
    return 0;
}

static void
free_table(token_table *table)
{
    release_groups(table);
    release_slots(table);
    PyMem_Free(table->slots);
    PyMem_Free(table->touched);
    table->slots = NULL;
    table->touched = NULL;
    table->touched_cap = 0;
}

/* RouteCache: a token table kept across calls (see speedups.h). */
typedef struct {
    PyObject_HEAD
    token_table table;  /* slots made on first use */
    PyObject *tokens;   /* the dict the slots were filled from (owned) */
    PyObject *groups;   /* the groups dict the slots' groups come from (owned) */
    Py_ssize_t groups_size;  /* its size when the last call ended */
    int busy;           /* a call is using the table */
    int stale;          /* clear() was called during a call: clear when it ends */
} RouteCache;

static void
cache_empty(RouteCache *cache)
{
    release_groups(&cache->table);
    Py_CLEAR(cache->groups);
    release_slots(&cache->table);
    Py_CLEAR(cache->tokens);
    cache->stale = 0;
}

/* The table a call with `cache` (None or a RouteCache) uses: the cache's, or one made for
 * the call (no cache, or the cache is in use by a call this one runs inside of). `*owned`
 * says which; end with finish_table. NULL with an exception set. */
static token_table *
start_table(PyObject *cache_arg, PyObject *tokens, PyObject *groups, Py_ssize_t frames,
            token_table *local, RouteCache **owned)
{
    *owned = NULL;
    if (cache_arg != Py_None && !PyObject_TypeCheck(cache_arg, &RouteCacheType)) {
        PyErr_SetString(PyExc_TypeError, "cache must be a RouteCache or None");
        return NULL;
    }
    RouteCache *cache = cache_arg == Py_None ? NULL : (RouteCache *)cache_arg;
    if (cache == NULL || cache->busy)
        return call_table(local, frames, groups) < 0 ? NULL : local;
    token_table *table = &cache->table;
    if (table->slots == NULL) {
        table->slots = PyMem_Calloc(ROUTE_CACHE_SLOTS, sizeof(token_slot));
        if (table->slots == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        table->size = ROUTE_CACHE_SLOTS;
        table->max_kept = MAX_KEPT_TOKEN;
    }
    if (cache->tokens != tokens) {
        cache_empty(cache);
        Py_INCREF(tokens);
        cache->tokens = tokens;
    }
    /* A slot's group serves every call given the same groups dict (a round of ingest is
     * routed into one dict, read by read), so it is fetched once a round, not once a read.
     * Another dict, or one that lost keys since the last call, starts afresh. */
    if (cache->groups != groups || PyDict_GET_SIZE(groups) < cache->groups_size) {
        release_groups(table);
        Py_INCREF(groups);
        Py_XSETREF(cache->groups, groups);
        table->call++;
    }
    cache->busy = 1;
    table->groups = groups;
    *owned = cache;
    return table;
}

static void
finish_table(token_table *table, RouteCache *cache)
{
    if (cache == NULL) {
        free_table(table);
        return;
    }
    cache->groups_size = PyDict_GET_SIZE(cache->groups);
    cache->busy = 0;
    if (cache->stale)
        cache_empty(cache);
}

static PyObject *
route_cache_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) || (kwargs != NULL && PyDict_GET_SIZE(kwargs))) {
        PyErr_SetString(PyExc_TypeError, "RouteCache() takes no arguments");
        return NULL;
    }
    RouteCache *cache = (RouteCache *)type->tp_alloc(type, 0);
    return (PyObject *)cache;
}

static int
route_cache_traverse(RouteCache *cache, visitproc visit, void *arg)
{
    Py_VISIT(cache->tokens);
    Py_VISIT(cache->groups);
    if (cache->table.slots != NULL) {
        for (Py_ssize_t i = 0; i < cache->table.size; i++) {
            Py_VISIT(cache->table.slots[i].token);
            Py_VISIT(cache->table.slots[i].entry);
            Py_VISIT(cache->table.slots[i].group);
        }
    }
    return 0;
}

static int
route_cache_clear_refs(RouteCache *cache)
{
    if (cache->busy) {
        cache->stale = 1;
        return 0;
    }
    cache_empty(cache);
    return 0;
}

static void
route_cache_dealloc(RouteCache *cache)
{
    PyObject_GC_UnTrack(cache);
    cache_empty(cache);
    PyMem_Free(cache->table.slots);
    PyMem_Free(cache->table.touched);
    Py_TYPE(cache)->tp_free((PyObject *)cache);
}

static PyObject *
route_cache_clear(RouteCache *cache, PyObject *unused)
{
    route_cache_clear_refs(cache);
    Py_RETURN_NONE;
}

static Py_ssize_t
route_cache_len(RouteCache *cache)
{
    return cache->table.used;
}

static PyMethodDef route_cache_methods[] = {
    {"clear", (PyCFunction)route_cache_clear, METH_NOARGS,
     "Forget every token (call it whenever the tokens dict changes)."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods route_cache_sequence = {.sq_length = (lenfunc)route_cache_len};

PyTypeObject RouteCacheType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "logrouter.protocol._speedups.RouteCache",
    .tp_basicsize = sizeof(RouteCache),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "RouteCache()\n\nThe token table of route_frames and split_route, kept across "
              "calls: each token is looked up in the tokens dict once, not once a call, and "
              "its channel's list in the groups dict once while the same dict is passed. It "
              "answers from what `tokens` held when the token was first seen, so clear() it "
              "whenever that dict changes (a different dict clears it by itself). The groups "
              "dict may gain keys between calls; a key it loses, or a list replaced under a "
              "key, is noticed only when the dict shrank.",
    .tp_new = route_cache_new,
    .tp_dealloc = (destructor)route_cache_dealloc,
    .tp_traverse = (traverseproc)route_cache_traverse,
    .tp_clear = (inquiry)route_cache_clear_refs,
    .tp_methods = route_cache_methods,
    .tp_as_sequence = &route_cache_sequence,
};

/* route_frames(frames, tokens, groups, cache=None) -> (not_syslog, no_token, unknown_token)
 *
 * For each frame, look up its APP-NAME (the fourth space-separated field) in `tokens`
 * (a dict of token -> (channel, name)); append the frame with APP-NAME replaced by name
 * to groups[channel] (a list, created on first use). Frames with fewer than five fields,
 * or whose APP-NAME is not a known token, are counted and left out.
 *
 * Each distinct token is looked up once per call (a small table sized to the batch) or, with
 * a RouteCache, once while the cache keeps it; its group once per call, or with the cache
 * once per groups dict. So a read of many
 * frames for many apps pays neither a bytes object, a hash nor a dict lookup per frame. */
PyObject *
lr_route_frames(PyObject *self, PyObject *args)
{
    PyObject *frames, *tokens, *groups, *cache_arg = Py_None;
    if (!PyArg_ParseTuple(args, "O!O!O!|O:route_frames", &PyList_Type, &frames, &PyDict_Type,
                          &tokens, &PyDict_Type, &groups, &cache_arg))
        return NULL;
    Py_ssize_t counts[4] = {0, 0, 0, 0};
    token_table local;
    RouteCache *cache;
    token_table *table = start_table(cache_arg, tokens, groups, PyList_GET_SIZE(frames), &local,
                                     &cache);
    if (table == NULL)
        return NULL;
    int failed = 0;
    /* The size is read each round: a channel's __eq__ (Python) could change the list. */
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(frames); k++) {
        PyObject *frame = PyList_GET_ITEM(frames, k);
        if (!PyBytes_Check(frame)) {
            PyErr_SetString(PyExc_TypeError, "frames must be bytes");
            failed = 1;
            break;
        }
        Py_INCREF(frame); /* ours while Python may run (a lookup, a channel's __eq__) */
        int rc = route_one(PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame), table, tokens,
                           counts);
        Py_DECREF(frame);
        if (rc < 0) {
            failed = 1;
            break;
        }
    }
    finish_table(table, cache);
    if (failed)
        return NULL;
    return Py_BuildValue("nnn", counts[NOT_SYSLOG], counts[NO_TOKEN], counts[UNKNOWN_TOKEN]);
}

/* split_route(buf, pos, max_frame, tokens, groups, cache=None)
 *     -> (pos, routed, not_syslog, no_token, unknown_token)
 *
 * split_octets and route_frames in one pass, without a bytes object per frame: each
 * well-formed octet-counted frame of buf[pos:] is routed straight from `buf` (as
 * route_frames would route it), up to where split_octets would stop; `pos` is what
 * split_octets would return. */
PyObject *
lr_split_route(PyObject *self, PyObject *args)
{
    PyObject *buf, *tokens, *groups, *cache_arg = Py_None;
    Py_ssize_t pos, max_frame;
    if (!PyArg_ParseTuple(args, "SnnO!O!|O:split_route", &buf, &pos, &max_frame, &PyDict_Type,
                          &tokens, &PyDict_Type, &groups, &cache_arg))
        return NULL;
    const char *s = PyBytes_AS_STRING(buf); /* bytes: immutable, and the caller holds it */
    Py_ssize_t n = PyBytes_GET_SIZE(buf);
    if (pos < 0)
        pos = 0;
    Py_ssize_t counts[4] = {0, 0, 0, 0};
    token_table local;
    RouteCache *cache;
    token_table *table = start_table(cache_arg, tokens, groups, pos < n ? (n - pos) / 128 : 0,
                                     &local, &cache);
    if (table == NULL)
        return NULL;
    /* ahead[(k + i) % ring]: the frame i places after frame k, the next to be routed;
     * `scan`: where the frame after the last one parsed starts. */
    enum { ring = LOOK_AHEAD + 1 };
    parsed_frame ahead[ring];
    Py_ssize_t queued = 0, k = 0, scan = pos, start, length;
    int found = 1;
    for (;;) {
        while (queued < ring && found > 0) {
            found = next_octet_frame(s, n, scan, max_frame, &start, &length);
            if (found <= 0)
                break;
            parsed_frame *f = &ahead[(k + queued) % ring];
            parse_frame(f, s + start, length);
            scan = start + length;
            queued++;
        }
        if (queued == 0)
            break;
        for (Py_ssize_t i = 1; i < queued; i++)
            prefetch_stage(table, &ahead[(k + i) % ring], (int)i);
        parsed_frame *f = &ahead[k];
        if (route_parsed(f, table, tokens, counts) < 0) {
            finish_table(table, cache);
            return NULL;
        }
        pos = (f->s - s) + f->n;
        k = (k + 1) % ring;
        queued--;
    }
    if (found < 0)
        pos = -(pos + 1);
    finish_table(table, cache);
    return Py_BuildValue("nnnnn", pos, counts[ROUTED], counts[NOT_SYSLOG], counts[NO_TOKEN],
                         counts[UNKNOWN_TOKEN]);
}

/* route_to(frames, token, name) -> list: frames whose APP-NAME equals token get name
 * instead; every other frame is kept as it is. */
PyObject *
lr_route_to(PyObject *self, PyObject *args)
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
