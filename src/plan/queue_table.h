/*
 * queue_table.h - the load caps measured on the runtime's batcher (layer 6,
 * private to src/plan): the table that bench/gen_queue_table.c writes to
 * queue_table.c and queue.c looks up. docs/internals/plan.md, "Queueing".
 *
 * plan_queue_table[c][d][b][j][i]: in 1/10,000ths, the share of full load
 * (B / D) up to which the runtime's batcher and admission, fed 20,000
 * arrivals with cv {1, 1.5, 2, 3, 4}[c], answer >= 99.25% of them within the
 * SLO on each of two seeds; D = QT_D_MS[d] (10 or 100 ms), B = 2^b,
 * r = L(1) / D = 2^(-j/4) (rows past 1 / B are left 0: never read),
 * x = SLO / D = 2^(1 + i/16). Non-decreasing in x, non-increasing in r.
 */
#ifndef USHER_PLAN_QUEUE_TABLE_H
#define USHER_PLAN_QUEUE_TABLE_H

#define QT_CV 5  /* cv 1, 1.5, 2, 3, 4 */
#define QT_D 2   /* D = 10, 100 ms */
#define QT_B 8   /* B = 1, 2, ..., 128 */
#define QT_R 29  /* r = 2^(-j/4), j = 0..28: 1 to 1/128 */
#define QT_R_STEP 4
#define QT_X 65  /* x = 2^(1 + i/16), i = 0..64: 2 to 32 */
#define QT_X_STEP 16

#define QT_D_MS {10.0, 100.0}

#include <stdint.h>

extern const uint16_t plan_queue_table[QT_CV][QT_D][QT_B][QT_R][QT_X];

#endif
