/* The CPU training kernel: word2vec's SGD over a range of sentences, one call per chunk.
 *
 * Python hands each worker thread a chunk of sentences; the call releases the GIL, so
 * threads update the shared matrices without locks (hogwild), as word2vec C, gensim and
 * fastText do. Semantics are word2vec's: sub-sampling drawn afresh, reduced window,
 * k negatives from the unigram^0.75 noise (alias table, exact), negatives equal to the
 * target redrawn, linear learning-rate decay over a word counter shared by all threads.
 * Skip-gram: the centre word's input vector predicts each context word. CBOW: the mean
 * of the context input vectors predicts the centre word, and each context vector gets
 * the full hidden-layer gradient (word2vec C's update). Hierarchical softmax scores the
 * same hidden vector against the inner nodes on the target's Huffman path.
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
} Job;

#define TABLE_SIZE 4096
#define TABLE_MAX 8.0f
#define SYNC_WORDS 10000

static float sigmoid_table[TABLE_SIZE + 2];
static float softplus_table[TABLE_SIZE + 2]; /* log(1 + exp(-a)) for a in [0, TABLE_MAX] */
static int tables_ready = 0;

static void init_tables(void) {
    for (int i = 0; i <= TABLE_SIZE + 1; i++) {
        double x = (double)i / TABLE_SIZE * 2 * TABLE_MAX - TABLE_MAX;
        sigmoid_table[i] = (float)(1.0 / (1.0 + exp(-x)));
        double a = (double)i / TABLE_SIZE * TABLE_MAX;
        softplus_table[i] = (float)log1p(exp(-a));
    }
    tables_ready = 1;
}

/* Linear interpolation keeps both within ~1e-6 of the exact values. */
static inline float sigmoid(float x) {
    if (x >= TABLE_MAX) return 1.0f;
    if (x <= -TABLE_MAX) return 0.0f;
    float t = (x + TABLE_MAX) * (TABLE_SIZE / (2 * TABLE_MAX));
    int i = (int)t;
    return sigmoid_table[i] + (t - i) * (sigmoid_table[i + 1] - sigmoid_table[i]);
}

/* log(1 + exp(x)): the logistic loss is softplus(-score) for a positive, softplus(score) for a negative. */
static inline float softplus(float x) {
    float a = fabsf(x), base = x > 0 ? x : 0.0f;
    if (a >= TABLE_MAX) return base + expf(-a);
    float t = a * (TABLE_SIZE / TABLE_MAX);
    int i = (int)t;
    return base + softplus_table[i] + (t - i) * (softplus_table[i + 1] - softplus_table[i]);
}

static inline uint64_t next_random(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline float uniform(uint64_t r) { return (float)(r >> 40) * (1.0f / 16777216.0f); }

static inline int32_t draw_noise(const Job *j, uint64_t *rng) {
    uint64_t r = next_random(rng);
    int32_t i = (int32_t)(((r >> 32) * (uint64_t)j->vocab) >> 32);
    return uniform(r << 32) < j->alias_accept[i] ? i : j->alias_index[i];
}

static inline float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline void axpy(float g, const float *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] += g * x[i];
}

/* One logistic step of hidden h against row v: v moves, h's gradient goes to grad. */
static inline void score(float *h, float *v, int label, float alpha, float *grad, int d, Job *j) {
    float f = dot(h, v, d);
    float g = ((float)label - sigmoid(f)) * alpha;
    j->loss_sum += softplus(label ? -f : f);
    j->loss_count++;
    axpy(g, v, grad, d);
    axpy(g, h, v, d);
}

static int64_t fixed_cursor = 0;

/* Scores hidden h for target word t: 1 positive + k negatives, and/or the Huffman path. */
static inline void train_target(Job *j, float *h, int32_t t, float alpha, float *grad, uint64_t *rng) {
    int d = j->dim;
    if (j->negative > 0) {
        score(h, j->out + (int64_t)t * d, 1, alpha, grad, d, j);
        for (int k = 0; k < j->negative; k++) {
            int32_t n = t;
            if (j->fixed_negatives) {
                n = j->fixed_negatives[fixed_cursor++ % j->n_fixed_negatives];
            } else {
                for (int tries = 0; n == t && tries < 32; tries++) n = draw_noise(j, rng);
            }
            if (n == t) continue; /* only a one-word vocabulary gets here */
            score(h, j->out + (int64_t)n * d, 0, alpha, grad, d, j);
        }
    }
    if (j->out_hs) {
        const int32_t *pts = j->hs_points + (int64_t)t * j->hs_width;
        const uint8_t *codes = j->hs_codes + (int64_t)t * j->hs_width;
        for (int i = 0; i < j->hs_lengths[t]; i++)
            score(h, j->out_hs + (int64_t)pts[i] * d, 1 - codes[i], alpha, grad, d, j);
    }
}

int w2v_train_chunk(Job *j) {
    if (!tables_ready) init_tables();
    int d = j->dim;
    uint64_t rng = j->seed;
    float *grad = malloc(sizeof(float) * d);
    float *hidden = malloc(sizeof(float) * d);
    int64_t cap = 0;
    int32_t *sen = NULL;
    int64_t local = 0;
    double span = j->alpha - j->min_alpha;
    float alpha = (float)(j->alpha - span * ((double)*j->words_done / j->total_words));
    if (alpha < j->min_alpha) alpha = (float)j->min_alpha;
    j->loss_sum = 0;
    j->loss_count = 0;
    j->words = 0;
    if (!grad || !hidden) return -1;

    for (int64_t s = j->s_begin; s < j->s_end; s++) {
        int64_t start = j->offsets[s], len = j->offsets[s + 1] - start;
        if (len > cap) {
            cap = len;
            free(sen);
            sen = malloc(sizeof(int32_t) * cap);
            if (!sen) { free(grad); free(hidden); return -1; }
        }
        int64_t n = 0;
        for (int64_t i = 0; i < len; i++) {
            int32_t w = j->ids[start + i];
            if (j->keep && j->keep[w] < 1.0f && j->keep[w] < uniform(next_random(&rng))) continue;
            sen[n++] = w;
        }
        for (int64_t i = 0; i < n; i++) {
            int64_t b = 1 + (int64_t)(next_random(&rng) % (uint64_t)j->window); /* reduced window 1..window */
            int64_t lo = i - b < 0 ? 0 : i - b, hi = i + b >= n ? n - 1 : i + b;
            if (j->cbow) {
                int cw = 0;
                memset(hidden, 0, sizeof(float) * d);
                for (int64_t c = lo; c <= hi; c++) {
                    if (c == i) continue;
                    axpy(1.0f, j->in + (int64_t)sen[c] * d, hidden, d);
                    cw++;
                }
                if (!cw) continue;
                for (int k = 0; k < d; k++) hidden[k] /= cw;
                memset(grad, 0, sizeof(float) * d);
                train_target(j, hidden, sen[i], alpha, grad, &rng);
                for (int64_t c = lo; c <= hi; c++)
                    if (c != i) axpy(1.0f, grad, j->in + (int64_t)sen[c] * d, d);
            } else {
                float *h = j->in + (int64_t)sen[i] * d;
                for (int64_t c = lo; c <= hi; c++) {
                    if (c == i) continue;
                    memset(grad, 0, sizeof(float) * d);
                    train_target(j, h, sen[c], alpha, grad, &rng);
                    axpy(1.0f, grad, h, d);
                }
            }
        }
        local += len;
        if (local >= SYNC_WORDS || s + 1 == j->s_end) {
            int64_t done = __atomic_add_fetch(j->words_done, local, __ATOMIC_RELAXED);
            j->words += local;
            local = 0;
            alpha = (float)(j->alpha - span * ((double)done / j->total_words));
            if (alpha < j->min_alpha) alpha = (float)j->min_alpha;
        }
    }
    free(sen);
    free(grad);
    free(hidden);
    return 0;
}

/* For tests: reset the cursor over fixed negatives. */
void w2v_reset_fixed_negatives(void) { fixed_cursor = 0; }
