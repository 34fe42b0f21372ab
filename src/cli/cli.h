/* cli.h - what the verbs of the usher command share (layer 9). */
#ifndef CLI_H
#define CLI_H

#include <stdbool.h>
#include <stdint.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_INCOMPLETE = 3 };

int cli_inspect(int argc, char **argv);
int cli_convert(int argc, char **argv);
int cli_estimate(int argc, char **argv);
int cli_interfere(int argc, char **argv);
int cli_calibrate(int argc, char **argv);
int cli_plan(int argc, char **argv);
int cli_simulate(int argc, char **argv);
int cli_compare(int argc, char **argv);
int cli_worker(int argc, char **argv); /* internal: started by the server */
int cli_serve(int argc, char **argv);
int cli_load(int argc, char **argv);

/* Strict decimal parse of a whole string into [min, max]; false otherwise. */
bool cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* "12,345,678" */
const char *cli_group(uint64_t v, char *buf, size_t n);
/* "1.23 G" style with the given unit */
const char *cli_si(double v, const char *unit, char *buf, size_t n);

#endif
