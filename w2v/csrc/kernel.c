/* The CPU training kernel: word2vec's SGD over a range of sentences, one call per chunk.
 *
 * Python hands each worker thread a chunk of sentences; the call releases the GIL, so
 * threads update the shared matrices without locks (hogwild), as word2vec C, gensim and
 * fastText do. Semantics are word2vec's: sub-sampling drawn afresh, reduced window,
 * k negatives from the unigram^0.75 noise (alias table, exact), negatives equal to the
 * target redrawn, linear learning-rate decay over a word counter shared by all threads.
 * Skip-gram: the centre word's input vector predicts each context word; with hierarchical
 * softmax, each context word's input vector predicts the centre word instead (word2vec C's
 * and gensim's order: the centre's Huffman path, ~17 rows, is scored once per context word
 * while it is in cache; it measured better for hs, and the centre-first order for negative
 * sampling alone: bench/RESULTS.md). Over a corpus both
 * orders train the same pairs. CBOW: the mean
 * of the context input vectors predicts the centre word, and each context vector gets
 * the full hidden-layer gradient (word2vec C's update). Hierarchical softmax scores the
 * same hidden vector against the inner nodes on the target's Huffman path.
 *
 * Speed. The arithmetic is small (a dot product and two axpys of `dim` floats per scored
 * row); what costs is waiting for rows of the output matrix, which are picked at random
 * (negatives) from a matrix far bigger than the caches. So the work is split in two
 * stages that run a few centre words apart: the *draw* stage makes every random choice
 * for a centre word (its reduced window, then the negatives of each of its targets, in
 * the same order as a one-stage loop would, so the random stream and the results are
 * unchanged) and prefetches every row that centre will touch; the *train* stage then
 * scores rows that are already in cache. The rows a centre word will touch go into a
 * queue, and each row the train stage starts prefetches the row LEAD places further on,
 * so a steady number of misses is in flight (prefetching a whole centre word's rows at
 * once stalls on the core's miss buffers and gains nothing). Random numbers are generated
 * RANDOM_AHEAD in advance so the alias-table entries they will read are prefetched too.
 * Per scored row the dot product is one pass and the two axpys are one fused pass; for
 * the usual dimensions (50, 100, 200, 300) the loops are compiled for a constant length.
 *
 * Hierarchical softmax with several threads: every path starts at the root, so the top
 * inner nodes are written by every pair in every thread, and their cache lines would
 * bounce between cores on each write (A/B runs with bench/investigations/kernel_ab.py
 * --private; bench/RESULTS.md). Each thread trains the top_nodes nodes nearest the root in
 * a copy of its own and adds its changes to the shared rows every TOP_EXCHANGE centre words: within a thread SGD is
 * unchanged; the other threads see those rows' changes a few hundred pairs late.
 *
 * Safety. native.make_job checks every buffer before a call; the kernel checks again what
 * it can cheaply (the Job's counts and rates, each sentence's offsets, each id as it is
 * read) and stops the chunk with an error code instead of reading or writing outside a
 * buffer. A score that becomes nan or infinite (training diverged) stops the chunk too.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float *in, *out, *out_hs;         /* [V,d], [V,d] (NULL when negative == 0), [V-1,d] (NULL without hs) */
    int64_t vocab;
    int32_t dim, negative, window, cbow;
    const int32_t *ids;
    const int64_t *offsets;
    int64_t s_begin, s_end;           /* sentences [s_begin, s_end) */
    const float *keep;                /* keep probability per word; NULL: no sub-sampling */
    const float *alias_accept;
    const int32_t *alias_index;
    const int32_t *hs_points;         /* [V, hs_width] */
    const uint8_t *hs_codes;          /* [V, hs_width] */
    const int32_t *hs_lengths;        /* [V] */
    int32_t hs_width;
    const int32_t *fixed_negatives;   /* tests only: negatives read in turn instead of drawn */
    int64_t n_fixed_negatives;
    double alpha, min_alpha;
    int64_t total_words;              /* words of all epochs, for the decay */
    int64_t *words_done;              /* shared counter, updated atomically */
    uint64_t seed;
    /* results */
    double loss_sum;
    int64_t loss_count, words;
    /* ids holds the corpus's tokens from ids_base on: the trainer reads each chunk's ids
       into a small buffer rather than handing over the whole memory-mapped corpus */
    int64_t ids_base;
    /* Hierarchical softmax with several threads: the top_nodes inner nodes nearest the root
       (every path runs through them) are trained in a per-thread copy whose changes are
       added to the shared rows every TOP_EXCHANGE centre words; 0: shared directly. */
    int32_t top_nodes;
    /* Fields added later go here, at the end, in native.Job's order too. */
    int64_t n_ids;                    /* ids' length: every sentence lies in ids[0, n_ids) */
    double alpha_end;                 /* result: the learning rate in effect when the chunk ended or stopped */
    int64_t error_at;                 /* result: W2V_BAD_ID: the id's corpus position; W2V_BAD_SENTENCE: the sentence */
} Job;

/* w2v_train_chunk's return codes (native.py maps each to an exception). A chunk that
 * stops early has been partly applied. */
#define W2V_DONE 0
#define W2V_NO_MEMORY (-1)
#define W2V_DIVERGED (-2)     /* a score became nan or infinite */
#define W2V_BAD_ID (-3)       /* an id of the chunk outside [0, vocab) */
#define W2V_BAD_SENTENCE (-4) /* a sentence's offsets outside ids, or decreasing */
#define W2V_BAD_JOB (-5)      /* a count, pointer or rate of the Job out of range */
#define MAX_NEGATIVE 1000

#define TABLE_SIZE 2048
#define TABLE_MAX 8.0f
#define TABLE_MAX_BITS 0x41000000u /* TABLE_MAX's bits: positive floats order as their bits do */
#define EXPONENT_BITS 0x7f800000u  /* all ones: inf or nan */
#define COUNTER_FLUSH_WORDS 10000
#ifndef LEAD
#define LEAD 16 /* rows prefetched ahead of the row being scored */
#endif
#ifndef DRAW_AHEAD
#define DRAW_AHEAD 48 /* rows drawn beyond the prefetch point before the next centre word is trained */
#endif
#define RANDOM_AHEAD 64 /* random numbers drawn ahead, so their alias-table entries can be prefetched */
#define MAX_SLOTS 64 /* centre words drawn and not yet trained, at most */
#define TOP_EXCHANGE 64 /* centre words between exchanges of the top inner nodes */
#ifndef CACHED_LEVELS
/* Huffman-path rows not prefetched: every target's path starts at the root, so the top
 * levels are always cached, and both threads keep writing them; a prefetch-for-write of
 * those lines only steals them from the other core an extra time (bench/RESULTS.md). */
#define CACHED_LEVELS 6
#endif

/* sigmoid(a) and log(1 + exp(-a)) at a = i * TABLE_MAX / TABLE_SIZE, side by side (16 kB in
 * all): one cache line serves a lookup of both, and x < 0 is served by symmetry. */
typedef struct { float sig, sp; } Logistic;
static Logistic logistic_table[TABLE_SIZE + 2];
static volatile int tables_ready = 0;

static void init_tables(void) {
    for (int i = 0; i <= TABLE_SIZE + 1; i++) {
        double a = (double)i / TABLE_SIZE * TABLE_MAX;
        logistic_table[i] = (Logistic){(float)(1.0 / (1.0 + exp(-a))), (float)log1p(exp(-a))};
    }
    tables_ready = 1;
}

/* |x|'s bits. The kernel is built with -ffast-math, which lets the compiler assume floats
 * are finite and drop isnan/isinf tests; the empty asm hides where the integer came from,
 * so tests on these bits are kept (tests/test_kernel_safety.py proves it). */
static inline uint32_t abs_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    __asm__("" : "+r"(u));
    return u & 0x7fffffffu;
}

static inline int finite_double(double x) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    __asm__("" : "+r"(u));
    return (u & 0x7ff0000000000000ull) != 0x7ff0000000000000ull;
}

/* sigmoid(x), and the logistic loss of x for `label` (softplus(-x) for 1, softplus(x) for 0).
 * Linear interpolation keeps both within ~5e-7 of the exact values. A nan or infinite x
 * (training has diverged) sets *bad; the integer compare sends it to the branch that
 * does not index the table (a float compare is false for nan, and (int)nan indexes anywhere). */
static inline float logistic(float x, float label, float *loss, int *bad) {
    uint32_t bits = abs_bits(x);
    float a = fabsf(x), sig_a, sp_a;
    if (bits >= TABLE_MAX_BITS) {
        *bad |= bits >= EXPONENT_BITS;
        sig_a = 1.0f;
        sp_a = expf(-a);
    } else {
        float t = a * (TABLE_SIZE / TABLE_MAX);
        int i = (int)t;
        float frac = t - (float)i;
        const Logistic *e = &logistic_table[i];
        sig_a = e[0].sig + frac * (e[1].sig - e[0].sig);
        sp_a = e[0].sp + frac * (e[1].sp - e[0].sp);
    }
    float margin = label > 0 ? -x : x;  /* loss = softplus(margin) = max(margin, 0) + log(1 + exp(-|x|)) */
    *loss = (margin > 0 ? margin : 0.0f) + sp_a;
    return x >= 0 ? sig_a : 1.0f - sig_a;
}

static inline uint64_t next_random(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline float uniform(uint64_t r) { return (float)(r >> 40) * (1.0f / 16777216.0f); }

/* Every cache line of a row, for writing (the rows we score are also updated). */
static inline void prefetch_row(const float *p, int d) {
    const char *c = (const char *)p, *end = (const char *)(p + d);
    for (; c < end; c += 64) __builtin_prefetch(c, 1, 3);
    __builtin_prefetch(end - 1, 1, 3);
}

/* ---- the draw stage ------------------------------------------------------------------ */

/* Everything random about one centre word: its context words and the negatives of each target. */
typedef struct {
    int32_t centre, n_ctx;
    int32_t *ctx;  /* [2 * window] context word ids, in sentence order */
    int32_t *neg;  /* [targets * negative]: -1 where a negative equal to the target is skipped */
} Slot;

typedef struct {
    Job *j;
    int d, k;
    uint64_t rng;          /* the stream, RANDOM_AHEAD draws ahead of the one used */
    uint64_t ahead[RANDOM_AHEAD];
    unsigned next;
    float alpha;
    double span;
    /* draw-stage position */
    int64_t s;             /* sentence being drawn */
    int32_t *sen;          /* its kept words */
    int64_t n, i, cap;     /* kept words, next centre, capacity of sen */
    int64_t local;         /* words read since the last sync of the shared counter */
    /* Rows the train stage will touch, in order: the draw stage appends them, and as the
       train stage starts its `used`-th row the rows up to used + LEAD are prefetched. */
    const float **queue;
    uint64_t mask, queued, pf, used;
    /* top inner nodes (>= top_start): this thread's copy, and their values at the last exchange */
    float *top, *top_base;
    int64_t top_start;
    int32_t n_top;
    int diverged;          /* a score was nan or infinite */
} State;

/* How many rows at the top of a path are not prefetched: those in this thread's private copy
 * (the top nodes form the top of the tree, so they are a prefix of every path), or without
 * one the CACHED_LEVELS top levels, which stay cached anyway. */
static inline int hs_top(const State *st, const int32_t *pts, int len) {
    if (!st->n_top) return len < CACHED_LEVELS ? len : CACHED_LEVELS;
    int p = 0;
    while (p < len && pts[p] >= st->top_start) p++;
    return p;
}

/* Adds this thread's changes to the top rows since the last exchange to the shared rows,
 * and takes the shared values (with the other threads' changes) as the new copy. */
static void top_exchange(State *st) {
    float *shared = st->j->out_hs + st->top_start * st->d;
    int64_t n = (int64_t)st->n_top * st->d;
    for (int64_t i = 0; i < n; i++) {
        float v = shared[i] + (st->top[i] - st->top_base[i]);
        shared[i] = v;
        st->top[i] = st->top_base[i] = v;
    }
}

static inline void enqueue(State *st, const float *row) { st->queue[st->queued++ & st->mask] = row; }

static inline void prefetch_ahead(State *st, int d) {
    uint64_t until = st->used + LEAD < st->queued ? st->used + LEAD : st->queued;
    while (st->pf < until) prefetch_row(st->queue[st->pf++ & st->mask], d);
}

/* Called as the train stage starts each queued row. */
static inline void prefetch_next(State *st, int d) {
    st->used++;
    prefetch_ahead(st, d);
}

/* Where a random number lands in the alias table, if it is used to draw a noise word. */
static inline int64_t alias_slot(const Job *j, uint64_t r) { return (int64_t)(((r >> 32) * (uint64_t)j->vocab) >> 32); }

/* The next number of the stream. Numbers are generated RANDOM_AHEAD in advance, and the
 * alias-table entries they would pick as noise words are prefetched then: the sequence
 * used is exactly next_random's. */
static inline uint64_t take_random(State *st) {
    const Job *j = st->j;
    uint64_t r = st->ahead[st->next], fresh = next_random(&st->rng);
    st->ahead[st->next] = fresh;
    st->next = (st->next + 1) % RANDOM_AHEAD;
    if (st->k) {
        int64_t i = alias_slot(j, fresh);
        __builtin_prefetch(j->alias_accept + i, 0, 3);
        __builtin_prefetch(j->alias_index + i, 0, 3);
    }
    return r;
}

static inline void start_random(State *st, uint64_t seed) {
    st->rng = seed;
    st->next = 0;
    for (int i = 0; i < RANDOM_AHEAD; i++) st->ahead[i] = next_random(&st->rng);
}

static inline int32_t draw_noise(State *st) {
    const Job *j = st->j;
    uint64_t r = take_random(st);
    int64_t i = alias_slot(j, r);
    /* Branch-free: the accept test is a coin flip that would mispredict on a cache miss. */
    int32_t other = j->alias_index[i];
    int32_t take = -(int32_t)(uniform(r << 32) < j->alias_accept[i]);
    return ((int32_t)i & take) | (other & ~take);
}

static int64_t fixed_cursor = 0;

static inline void draw_negatives(State *st, int32_t t, int32_t *out) {
    Job *j = st->j;
    for (int k = 0; k < st->k; k++) {
        int32_t n = t;
        if (j->fixed_negatives) {
            n = j->fixed_negatives[fixed_cursor++ % j->n_fixed_negatives];
        } else {
            for (int tries = 0; n == t && tries < 32; tries++) n = draw_noise(st);
        }
        out[k] = n == t ? -1 : n; /* only a one-word vocabulary keeps t after 32 draws */
    }
}

static inline void enqueue_targets(State *st, int32_t t, const int32_t *neg) {
    const Job *j = st->j;
    int d = st->d;
    if (st->k) {
        enqueue(st, j->out + (int64_t)t * d);
        for (int k = 0; k < st->k; k++)
            if (neg[k] >= 0) enqueue(st, j->out + (int64_t)neg[k] * d);
    }
    if (j->out_hs) {
        const int32_t *pts = j->hs_points + (int64_t)t * j->hs_width;
        int len = j->hs_lengths[t];
        for (int i = hs_top(st, pts, len); i < len; i++) enqueue(st, j->out_hs + (int64_t)pts[i] * d);
    }
}

static void flush_counter(State *st) {
    Job *j = st->j;
    int64_t done = __atomic_add_fetch(j->words_done, st->local, __ATOMIC_RELAXED);
    j->words += st->local;
    st->local = 0;
    float alpha = (float)(j->alpha - st->span * ((double)done / j->total_words));
    st->alpha = alpha < j->min_alpha ? (float)j->min_alpha : alpha;
}

/* Sub-samples the next sentence into st->sen; 1, 0 at the end of the chunk, or an error code.
 * Offsets and ids are checked as they are read: a bad one stops the chunk instead of
 * reading or writing outside the buffers. */
static int next_sentence(State *st) {
    Job *j = st->j;
    while (st->s < j->s_end) {
        int64_t start = j->offsets[st->s] - j->ids_base, end = j->offsets[st->s + 1] - j->ids_base;
        int64_t len = end - start;
        if (start < 0 || len < 0 || end > j->n_ids) {
            j->error_at = st->s;
            return W2V_BAD_SENTENCE;
        }
        st->s++;
        if (len > st->cap) {
            free(st->sen);
            st->cap = len;
            st->sen = malloc(sizeof(int32_t) * len);
            if (!st->sen) return W2V_NO_MEMORY;
        }
        int64_t n = 0;
        const int32_t *ids = j->ids + start;
        for (int64_t i = 0; i < len; i++) {
            int32_t w = ids[i];
            if ((uint64_t)(uint32_t)w >= (uint64_t)j->vocab) { /* negative ids too */
                j->error_at = j->ids_base + start + i;
                return W2V_BAD_ID;
            }
            if (j->keep && j->keep[w] < 1.0f && j->keep[w] < uniform(take_random(st))) continue;
            st->sen[n++] = w;
        }
        st->local += len;
        if (st->local >= COUNTER_FLUSH_WORDS) flush_counter(st);
        st->n = n;
        st->i = 0;
        if (n) return 1;
    }
    return 0;
}

/* Skip-gram's c-th pair of a centre word: whose input vector is trained and which word it
 * predicts (the centre predicts each context word; with hierarchical softmax the other way). */
static inline int32_t sg_input(const Job *j, const Slot *slot, int c) { return j->out_hs ? slot->ctx[c] : slot->centre; }
static inline int32_t sg_target(const Job *j, const Slot *slot, int c) { return j->out_hs ? slot->centre : slot->ctx[c]; }

/* Draws the next centre word into slot and queues its rows; 0 at the end of the chunk, < 0 an error. */
static int draw_centre(State *st, Slot *slot) {
    Job *j = st->j;
    if (st->i >= st->n) {
        int r = next_sentence(st);
        if (r <= 0) return r;
    }
    int64_t i = st->i++, n = st->n;
    const int32_t *sen = st->sen;
    int64_t b = 1 + (int64_t)(take_random(st) % (uint64_t)j->window); /* reduced window 1..window */
    int64_t lo = i - b < 0 ? 0 : i - b, hi = i + b >= n ? n - 1 : i + b;
    int d = st->d;
    int32_t centre = sen[i];
    slot->centre = centre;
    slot->n_ctx = 0;
    for (int64_t c = lo; c <= hi; c++)
        if (c != i) slot->ctx[slot->n_ctx++] = sen[c];
    if (j->cbow) {
        if (slot->n_ctx) {
            draw_negatives(st, centre, slot->neg);
            for (int c = 0; c < slot->n_ctx; c++) enqueue(st, j->in + (int64_t)slot->ctx[c] * d);
            enqueue_targets(st, centre, slot->neg);
        }
    } else {
        for (int c = 0; c < slot->n_ctx; c++) {
            int32_t *neg = slot->neg + (int64_t)c * st->k, t = sg_target(j, slot, c);
            draw_negatives(st, t, neg);
            enqueue(st, j->in + (int64_t)sg_input(j, slot, c) * d);
            enqueue_targets(st, t, neg);
        }
    }
    return 1;
}

/* ---- the train stage ----------------------------------------------------------------- */

/* One logistic step of hidden h against row v: v moves, h's gradient is added to grad. */
static inline __attribute__((always_inline)) float score(const float *restrict h, float *restrict v, float label,
                                                         float alpha, float *restrict grad, int d, int *bad) {
    float f = 0.0f;
    for (int i = 0; i < d; i++) f += h[i] * v[i];
    float loss;
    float g = (label - logistic(f, label, &loss, bad)) * alpha;
    for (int i = 0; i < d; i++) {
        float vi = v[i];
        grad[i] += g * vi;
        v[i] = vi + g * h[i];
    }
    return loss;
}

/* Scores h for target t: 1 positive + the drawn negatives, and/or the Huffman path. */
static inline __attribute__((always_inline)) void train_target(State *st, const float *restrict h, int32_t t,
                                                               const int32_t *neg, int k, float alpha,
                                                               float *restrict grad, int d, double *loss,
                                                               int64_t *count) {
    const Job *j = st->j;
    if (k) {
        prefetch_next(st, d);
        *loss += score(h, j->out + (int64_t)t * d, 1.0f, alpha, grad, d, &st->diverged);
        (*count)++;
        for (int m = 0; m < k; m++) {
            if (neg[m] < 0) continue;
            prefetch_next(st, d);
            *loss += score(h, j->out + (int64_t)neg[m] * d, 0.0f, alpha, grad, d, &st->diverged);
            (*count)++;
        }
    }
    if (j->out_hs) {
        const int32_t *pts = j->hs_points + (int64_t)t * j->hs_width;
        const uint8_t *codes = j->hs_codes + (int64_t)t * j->hs_width;
        int len = j->hs_lengths[t];
        int top = hs_top(st, pts, len);
        float *top_rows = st->n_top ? st->top : j->out_hs;
        int64_t first = st->n_top ? st->top_start : 0;
        for (int i = 0; i < top; i++)
            *loss += score(h, top_rows + (pts[i] - first) * d, (float)(1 - codes[i]), alpha, grad, d, &st->diverged);
        for (int i = top; i < len; i++) {
            prefetch_next(st, d);
            *loss += score(h, j->out_hs + (int64_t)pts[i] * d, (float)(1 - codes[i]), alpha, grad, d, &st->diverged);
        }
        *count += len;
    }
}

static inline __attribute__((always_inline)) void train_centre(State *st, const Slot *slot, float *restrict grad,
                                                               float *restrict hidden, int d, double *loss,
                                                               int64_t *count) {
    const Job *j = st->j;
    int k = st->k;
    float alpha = st->alpha;
    if (j->cbow) {
        int cw = slot->n_ctx;
        if (!cw) return;
        const float *first = j->in + (int64_t)slot->ctx[0] * d;
        prefetch_next(st, d);
        for (int i = 0; i < d; i++) hidden[i] = first[i];
        for (int c = 1; c < cw; c++) {
            const float *row = j->in + (int64_t)slot->ctx[c] * d;
            prefetch_next(st, d);
            for (int i = 0; i < d; i++) hidden[i] += row[i];
        }
        float inv = 1.0f / cw;
        for (int i = 0; i < d; i++) {
            hidden[i] *= inv;
            grad[i] = 0.0f;
        }
        train_target(st, hidden, slot->centre, slot->neg, k, alpha, grad, d, loss, count);
        for (int c = 0; c < cw; c++) {
            float *row = j->in + (int64_t)slot->ctx[c] * d;
            for (int i = 0; i < d; i++) row[i] += grad[i];
        }
    } else {
        for (int c = 0; c < slot->n_ctx; c++) {
            float *h = j->in + (int64_t)sg_input(j, slot, c) * d;
            prefetch_next(st, d);
            for (int i = 0; i < d; i++) grad[i] = 0.0f;
            train_target(st, h, sg_target(j, slot, c), slot->neg + (int64_t)c * k, k, alpha, grad, d, loss, count);
            for (int i = 0; i < d; i++) h[i] += grad[i];
        }
    }
}

/* The pipeline: draw until DRAW_AHEAD rows are queued beyond the prefetch point, then
 * train the oldest drawn centre word. Stops at the first error or divergence. */
static inline __attribute__((always_inline)) int run(State *st, Slot *slots, float *grad, float *hidden, int d) {
    double loss = 0.0;
    int64_t count = 0;
    unsigned filled = 0, head = 0, trained = 0;
    int r = 1;
    for (;;) {
        while (r > 0 && filled < MAX_SLOTS && st->queued < st->used + LEAD + DRAW_AHEAD)
            if ((r = draw_centre(st, &slots[(head + filled) % MAX_SLOTS])) > 0) filled++;
        if (!filled || r < 0) break;
        prefetch_ahead(st, d);
        train_centre(st, &slots[head], grad, hidden, d, &loss, &count);
        if (st->diverged) {
            r = W2V_DIVERGED;
            break;
        }
        if (st->n_top && ++trained % TOP_EXCHANGE == 0) top_exchange(st);
        head = (head + 1) % MAX_SLOTS;
        filled--;
    }
    st->j->loss_sum = loss;
    st->j->loss_count = count;
    return r < 0 ? r : W2V_DONE;
}

/* The Job's counts, pointers and rates, checked before anything is allocated or read
 * (native.make_job checks them and the buffers' contents first; this is the C side's
 * own guard against a Job built some other way). */
static int job_ok(const Job *j) {
    if (!j->in || !j->ids || !j->offsets || !j->words_done) return 0;
    if (j->vocab < 1 || j->dim < 1 || j->window < 1 || j->negative < 0 || j->negative > MAX_NEGATIVE) return 0;
    if (j->s_begin < 0 || j->s_end < j->s_begin || j->n_ids < 0 || j->total_words < 1 || j->top_nodes < 0) return 0;
    if (!finite_double(j->alpha) || !finite_double(j->min_alpha) || j->alpha < 0 || j->min_alpha < 0) return 0;
    if (j->out && j->negative > 0 && !j->fixed_negatives && (!j->alias_accept || !j->alias_index)) return 0;
    if (j->fixed_negatives && j->n_fixed_negatives < 1) return 0;
    if (j->out_hs && (j->vocab < 2 || j->hs_width < 1 || !j->hs_points || !j->hs_codes || !j->hs_lengths)) return 0;
    return 1;
}

/* Constant dimensions let the compiler unroll and vectorise the row loops exactly. */
static int run_50(State *st, Slot *s, float *g, float *h) { return run(st, s, g, h, 50); }
static int run_100(State *st, Slot *s, float *g, float *h) { return run(st, s, g, h, 100); }
static int run_200(State *st, Slot *s, float *g, float *h) { return run(st, s, g, h, 200); }
static int run_300(State *st, Slot *s, float *g, float *h) { return run(st, s, g, h, 300); }
static int run_any(State *st, Slot *s, float *g, float *h) { return run(st, s, g, h, st->d); }

int w2v_train_chunk(Job *j) {
    if (!tables_ready) init_tables();
    j->alpha_end = j->alpha;
    j->error_at = -1;
    if (!job_ok(j)) return W2V_BAD_JOB;
    int d = j->dim, k = j->negative > 0 ? j->negative : 0, w = j->window;
    State st = {0};
    st.j = j;
    st.d = d;
    st.k = j->out ? k : 0;
    start_random(&st, j->seed);
    st.span = j->alpha - j->min_alpha;
    st.s = j->s_begin;
    j->loss_sum = 0;
    j->loss_count = 0;
    j->words = 0;
    float alpha = (float)(j->alpha - st.span * ((double)*j->words_done / j->total_words));
    st.alpha = alpha < j->min_alpha ? (float)j->min_alpha : alpha;

    int64_t per_slot = 2 * (int64_t)w + 2 * (int64_t)w * (st.k > 0 ? st.k : 1);
    /* queued rows never exceed DRAW_AHEAD plus one centre word's rows */
    int64_t centre_rows = 1 + 2 * (int64_t)w * (1 + st.k + (j->out_hs ? j->hs_width : 0)) + 2 * (int64_t)w;
    uint64_t qsize = 64;
    while (qsize < (uint64_t)(DRAW_AHEAD + LEAD + centre_rows)) qsize *= 2;
    st.queue = malloc(sizeof(float *) * qsize);
    st.mask = qsize - 1;
    float *grad = malloc(sizeof(float) * d);
    float *hidden = malloc(sizeof(float) * d);
    int32_t *slot_mem = malloc(sizeof(int32_t) * per_slot * MAX_SLOTS);
    Slot slots[MAX_SLOTS];
    int r = W2V_NO_MEMORY;
    if (j->out_hs && j->top_nodes > 0) {
        st.n_top = j->top_nodes < j->vocab - 1 ? j->top_nodes : (int32_t)(j->vocab - 1);
        st.top_start = j->vocab - 1 - st.n_top;
        st.top = malloc(sizeof(float) * st.n_top * d);
        st.top_base = malloc(sizeof(float) * st.n_top * d);
        if (st.top && st.top_base) {
            memcpy(st.top, j->out_hs + st.top_start * d, sizeof(float) * st.n_top * d);
            memcpy(st.top_base, st.top, sizeof(float) * st.n_top * d);
        }
    }
    if (grad && hidden && slot_mem && st.queue && (!st.n_top || (st.top && st.top_base))) {
        for (int s = 0; s < MAX_SLOTS; s++) {
            slots[s].ctx = slot_mem + s * per_slot;
            slots[s].neg = slots[s].ctx + 2 * (int64_t)w;
        }
        switch (d) {
            case 50: r = run_50(&st, slots, grad, hidden); break;
            case 100: r = run_100(&st, slots, grad, hidden); break;
            case 200: r = run_200(&st, slots, grad, hidden); break;
            case 300: r = run_300(&st, slots, grad, hidden); break;
            default: r = run_any(&st, slots, grad, hidden); break;
        }
        if (r == W2V_DONE && st.local) flush_counter(&st);
        if (st.n_top) top_exchange(&st);
    }
    j->alpha_end = st.alpha;
    free(st.sen);
    free(st.queue);
    free(st.top);
    free(st.top_base);
    free(slot_mem);
    free(grad);
    free(hidden);
    return r;
}

/* For tests: reset the cursor over fixed negatives. */
void w2v_reset_fixed_negatives(void) { fixed_cursor = 0; }
