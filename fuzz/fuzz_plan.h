/* fuzz_plan.h - the planner input readers' fuzz body, shared by libFuzzer and tests. */
#ifndef FUZZ_PLAN_H
#define FUZZ_PLAN_H
#include <stddef.h>
#include <stdint.h>
/* data[0] % 3 picks the reader (0 cluster.yaml, 1 workload.yaml, 2 a running
 * plan.json), data[1..size) is the text. Checks the readers' contract and
 * aborts on a violation. Returns 1 when the reader accepted the text, 0 when
 * it rejected it (or size is 0), so replays can count both. */
int usher_fuzz_plan_one(const uint8_t *data, size_t size);
/* Free the GPU catalog the calls above keep (tests call it before checking
 * for leaks; libFuzzer never does: the catalog lives as long as the process). */
void usher_fuzz_plan_done(void);

struct plan_problem;
struct gpu_catalog;
/* The problem running plans are read against: a100-80gb (count 2, no node)
 * and t4 (count 4, node-2) of cat; resnet50 and bert with the candidates of
 * fuzz_plan.c. p is overwritten; free it with plan_problem_free. Aborts when
 * out of memory or when cat lacks a type. */
void usher_fuzz_plan_problem(struct plan_problem *p, const struct gpu_catalog *cat);
#endif
