/*
 * gen_queue_table.c - writes src/plan/queue_table.c: the planner's load caps,
 * measured on the runtime's own batcher and admission (bench/batcher_sim.h).
 * Built by CMake (target gen_queue_table), never run at build time: the
 * table is committed. Regenerate (about 10-15 min on the 2 cores of the
 * development Intel Xeon VM):
 *
 *   ninja -C build gen_queue_table
 *   build/bench/gen_queue_table > src/plan/queue_table.c
 *
 * Why a table. The analytic model (queue.c) counts the batcher's hold as a
 * worst case on top of the queue's wait, and its cap was about half of the
 * load the batcher really holds. The batcher's behaviour (keep-up holds,
 * deadline cuts, admission's margins and lateness) is simplest to take from
 * the batcher itself: src/plan (layer 6) may not call src/runtime, so the
 * caps are computed here, offline.
 *
 * What a cell is. In units of the full batch's latency D a replica is
 * described by B (its batch), r = L(1) / D (a batch of one against the full
 * batch) and x = SLO / D; the arrivals by their cv. The cell holds rho*, the
 * share of full load B / D up to which the batcher answers >= GEN_TARGET
 * (99.25%) of GEN_N requests within the SLO on every one of GEN_SEEDS seeds
 * at D = 10 ms, and again at D = 100 ms in a layer of its own (the
 * batcher's rate counter and admission keep absolute times, so a long batch,
 * a low rate, holds less in some cells): the loads 0.02, 0.04, ... in turn while they hold, then a
 * bisection in the step that failed (bench/batcher_sim.h, bsim_cell). "Up
 * to": the batcher is not monotone in the load - where a batch of one cannot
 * keep up it holds a batch for more rows until its oldest request's last
 * moment, which at low loads misses more than at high ones - and a plan may
 * load a replica anywhere below its cap. Never past 95% of full load (one
 * burst can start a spell of small batches). Batch latencies affine from
 * L(1) to D (test_plan checks convex ones against the table too).
 *
 * The grid (queue_table.h): D = 10, 100 ms; B = 1, 2, ..., 128; r = 2^(-j/4) from 1 down to
 * 1/B; x = 2^(1 + i/16) from 2 to 32; cv in {1, 1.5, 2, 3, 4}. Then made
 * monotone on the safe side: each cell the least of itself and the cells of
 * larger x and of smaller r, so a lookup that rounds x down and r and cv up
 * never promises more than a measured cell with no longer an SLO and no
 * smaller an L(1). GEN_JOBS processes (default 2) share the rows.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "batcher_sim.h"
#include "../src/plan/queue_table.h"


/* the grid: queue_table.h */
#define NB QT_B
#define NR QT_R
#define NX QT_X
#define ND QT_D
#define NCV QT_CV
static const double cvs[QT_CV] = {1, 1.5, 2, 3, 4}, ds[QT_D] = QT_D_MS;

typedef float row_t[NX];

/* one (cv, D, B, r) row: the cells of every x */
static int gen_row(size_t ci, size_t di, int bi, int j, float *out)
{
    static uint64_t lat[129];
    int b = 1 << bi;
    double r = exp2(-(double)j / QT_R_STEP);
    bsim_lat_table(lat, b, r * ds[di], ds[di], false);
    double lo = 0; /* from the last x's cap: a longer SLO holds what a shorter one did */
    for (int i = 0; i < NX; i++) {
        uint64_t salt = (((ci * ND + di) * NB + (size_t)bi) * NR + (size_t)j) * NX + (size_t)i;
        lo = bsim_cell(b, lat, exp2(1 + (double)i / QT_X_STEP), cvs[ci], salt, lo);
        if (lo < 0)
            return -1;
        out[i] = (float)lo;
    }
    fprintf(stderr, "cv %.1f D %3.0f B %3d r %.3f: x 2 %.4f, 4 %.3f, 8 %.3f, 32 %.3f\n",
            cvs[ci], ds[di], b, r, out[0], out[QT_X_STEP], out[2 * QT_X_STEP], out[NX - 1]);
    return 0;
}

int main(int argc, char **argv)
{
    static uint64_t lat[129];
    if (argc > 5 && strcmp(argv[1], "probe") == 0) { /* debugging: probe B r x cv */
        int b = atoi(argv[2]);
        double r = atof(argv[3]), x = atof(argv[4]), cv = atof(argv[5]);
        double d = argc > 6 ? atof(argv[6]) : 10, step = argc > 7 ? atof(argv[7]) : 0.025;
        bsim_lat_table(lat, b, r * d, d, false);
        for (double rho = step; rho < 0.999; rho += step)
            printf("rho %.3f: %.4f %.4f %.4f\n", rho,
                   bsim_attainment(b, lat, rho * b / d * 1e3, x * d, cv, 1, GEN_N),
                   bsim_attainment(b, lat, rho * b / d * 1e3, x * d, cv, 2, GEN_N),
                   bsim_attainment(b, lat, rho * b / d * 1e3, x * d, cv, 3, GEN_N));
        return 0;
    }
    /* GEN_JOBS processes (default 2) share the rows round robin, into shared memory */
    int jobs = getenv("GEN_JOBS") ? atoi(getenv("GEN_JOBS")) : 2;
    jobs = jobs < 1 ? 1 : jobs > 64 ? 64 : jobs;
    size_t rows = NCV * ND * NB * NR;
    row_t *tab = mmap(NULL, rows * sizeof *tab, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (tab == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
#define T(ci, di, bi, j) tab[(((ci) * ND + (di)) * NB + (size_t)(bi)) * NR + (size_t)(j)]
    for (int w = 0; w < jobs; w++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid > 0)
            continue;
        size_t k = 0;
        for (size_t ci = 0; ci < NCV; ci++)
            for (size_t di = 0; di < ND; di++)
                for (int bi = 0; bi < NB; bi++)
                    for (int j = 0; j <= QT_R_STEP * bi && j < NR; j++, k++)
                        if ((int)(k % (size_t)jobs) == w &&
                            gen_row(ci, di, bi, j, T(ci, di, bi, j)) < 0)
                            _exit(1);
        _exit(0);
    }
    int bad = 0;
    for (int w = 0; w < jobs; w++) {
        int st;
        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad = 1;
    }
    if (bad) {
        fprintf(stderr, "a worker failed\n");
        return 1;
    }
    /* monotone on the safe side: each cell the least of the cells of larger x and
     * smaller r (rows past 1 / B are none: left out) */
    for (size_t ci = 0; ci < NCV; ci++)
        for (size_t di = 0; di < ND; di++)
            for (int bi = 0; bi < NB; bi++)
                for (int j = QT_R_STEP * bi; j >= 0; j--) {
                    for (int i = NX - 2; i >= 0; i--)
                        T(ci, di, bi, j)[i] = fminf(T(ci, di, bi, j)[i], T(ci, di, bi, j)[i + 1]);
                    if (j < QT_R_STEP * bi) /* r_j > r_(j+1) */
                        for (int i = 0; i < NX; i++)
                            T(ci, di, bi, j)[i] =
                                fminf(T(ci, di, bi, j)[i], T(ci, di, bi, j + 1)[i]);
                }
    printf("/*\n * queue_table.c - GENERATED by bench/gen_queue_table.c; do not edit.\n"
           " * Regenerate: ninja -C build gen_queue_table &&\n"
           " *   build/bench/gen_queue_table > src/plan/queue_table.c\n"
           " * In 1/10,000ths of full load (B / D), per [cv][D][log2 B][j][i] (queue_table.h):\n"
           " * the load up to which the runtime's batcher and admission answer >= %.2f%% of\n"
           " * %d requests within the SLO on each of %d seeds; r = L(1) / D = 2^(-j/%d),\n"
           " * x = SLO / D = 2^(1 + i/%d). See queue.c and docs/internals/plan.md, \"Queueing\".\n"
           " */\n",
           100 * GEN_TARGET, GEN_N, GEN_SEEDS, QT_R_STEP, QT_X_STEP);
    printf("#include \"queue_table.h\"\n\n");
    printf("const uint16_t plan_queue_table[QT_CV][QT_D][QT_B][QT_R][QT_X] = {\n");
    for (size_t ci = 0; ci < NCV; ci++) {
        printf("{ /* cv %.1f */\n", cvs[ci]);
        for (size_t di = 0; di < ND; di++) {
            printf("{ /* D %.0f ms */\n", ds[di]);
            for (int bi = 0; bi < NB; bi++) {
                printf("{ /* B %d */\n", 1 << bi);
                for (int j = 0; j <= QT_R_STEP * bi; j++) {
                    printf("{");
                    for (int i = 0; i < NX; i++)
                        printf("%s%d", i ? (i % 16 ? "," : ",\n") : "",
                               (int)floor(T(ci, di, bi, j)[i] * 1e4));
                    printf("},\n");
                }
                printf("},\n");
            }
            printf("},\n");
        }
        printf("},\n");
    }
    printf("};\n");
#undef T
    return 0;
}
