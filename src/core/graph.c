/* Graph building: topological order by depth-first search from the requested outputs. */
#include "core/graph_internal.h"

struct fr_graph *fr_graph_new(struct fr_ctx *ctx)
{
    struct fr_graph *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->ctx = ctx;
    g->ex.seed_lo = 0x5eed;
    g->guard = getenv("FRUGAL_GUARD") && atoi(getenv("FRUGAL_GUARD")) > 0;
    return g;
}

void fr_graph_free(struct fr_graph *g)
{
    if (!g)
        return;
    fr_graph_release_storage(g);
    if (g->cpu)
        fr_backend_free(g->cpu);
    free(g->nodes);
    free(g->in_graph);
    free(g->fallback);
    free(g->guards);
    free(g);
}

static bool mark(struct fr_graph *g, const struct fr_tensor *t)
{
    if (t->id >= g->in_graph_cap) {
        int cap = FR_MAX(2 * g->in_graph_cap, t->id + 256);
        uint8_t *m = realloc(g->in_graph, (size_t)cap);
        if (!m)
            return false;
        memset(m + g->in_graph_cap, 0, (size_t)(cap - g->in_graph_cap));
        g->in_graph = m;
        g->in_graph_cap = cap;
    }
    g->in_graph[t->id] = 1;
    return true;
}

static bool is_in(const struct fr_graph *g, const struct fr_tensor *t)
{
    return t->id < g->in_graph_cap && g->in_graph[t->id];
}

static enum fr_status push(struct fr_graph *g, struct fr_tensor *t)
{
    if (g->n_nodes == g->cap) {
        int cap = g->cap ? 2 * g->cap : 64;
        struct fr_tensor **n = realloc(g->nodes, (size_t)cap * sizeof *n);
        if (!n)
            return fr_error(FR_STATUS_OUT_OF_MEMORY, "graph: out of memory");
        g->nodes = n;
        g->cap = cap;
    }
    if (!mark(g, t))
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "graph: out of memory");
    g->nodes[g->n_nodes++] = t;
    g->planned = false;
    return FR_STATUS_OK;
}

/* Iterative DFS (deep graphs must not overflow the C stack). */
static enum fr_status visit(struct fr_graph *g, struct fr_tensor *root)
{
    struct frame { struct fr_tensor *t; int next_src; };
    int cap = 64, top = 0;
    struct frame *st = malloc((size_t)cap * sizeof *st);
    if (!st)
        return fr_error(FR_STATUS_OUT_OF_MEMORY, "graph: out of memory");
    st[top++] = (struct frame){root, 0};
    enum fr_status rc = FR_STATUS_OK;
    while (top > 0 && rc == FR_STATUS_OK) {
        struct frame *f = &st[top - 1];
        if (is_in(g, f->t)) {
            top--;
            continue;
        }
        /* sources, then the view's storage owner, then the node itself */
        struct fr_tensor *child = NULL;
        while (f->next_src <= FR_MAX_SRC && !child) {
            struct fr_tensor *c = f->next_src < FR_MAX_SRC ? f->t->src[f->next_src] : f->t->view_src;
            f->next_src++;
            if (c && !is_in(g, c))
                child = c;
        }
        if (child) {
            if (top == cap) {
                cap *= 2;
                struct frame *n = realloc(st, (size_t)cap * sizeof *n);
                if (!n) {
                    rc = fr_error(FR_STATUS_OUT_OF_MEMORY, "graph: out of memory");
                    break;
                }
                st = n;
            }
            st[top++] = (struct frame){child, 0};
            continue;
        }
        rc = push(g, f->t);
        top--;
    }
    free(st);
    return rc;
}

enum fr_status fr_graph_add(struct fr_graph *g, struct fr_tensor *t)
{
    if (!t)
        return fr_error(fr_ctx_status(g->ctx) != FR_STATUS_OK ? fr_ctx_status(g->ctx) : FR_STATUS_INVALID_ARGUMENT,
                        "graph: cannot add a NULL tensor (an earlier op failed: %s)", fr_last_error());
    t->flags |= FR_FLAG_OUTPUT;
    return visit(g, t);
}

int fr_graph_n_nodes(const struct fr_graph *g) { return g->n_nodes; }
struct fr_tensor *fr_graph_node(const struct fr_graph *g, int i) { return i >= 0 && i < g->n_nodes ? g->nodes[i] : NULL; }

void fr_graph_set_training(struct fr_graph *g, bool training) { g->ex.training = training; }
bool fr_graph_training(const struct fr_graph *g) { return g->ex.training; }
void fr_graph_set_seed(struct fr_graph *g, uint64_t seed)
{
    g->ex.seed_lo = (uint32_t)seed;
    g->ex.seed_hi = (uint32_t)(seed >> 32);
}
void fr_graph_set_step(struct fr_graph *g, uint32_t step) { g->ex.step = step; }
uint32_t fr_graph_step(const struct fr_graph *g) { return g->ex.step; }
void fr_graph_set_first_sample(struct fr_graph *g, uint32_t first) { g->ex.first_sample = first; }
void fr_graph_get_stats(const struct fr_graph *g, struct fr_graph_stats *s) { *s = g->stats; }
void fr_graph_set_guard(struct fr_graph *g, bool on) { g->guard = on; g->planned = false; }
