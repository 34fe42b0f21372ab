/*
 * assert.h - invariant checks (layer 1).
 *
 *   US_ASSERT(cond)        always on, release builds included: for an invariant
 *                          whose breakage means the process's state is wrong
 *                          (RELIABILITY.md CI-6). Keep the condition cheap.
 *   US_DEBUG_ASSERT(cond)  on in debug and sanitizer builds only: for checks that
 *                          cost a walk or sit on a hot path (the IR after
 *                          finalize/infer, the runtime's request ledger).
 *
 * A failed check writes "FILE:LINE: FUNC: assertion failed: EXPR" to stderr and
 * calls abort() (SIGABRT, a core dump where enabled): a termination that says
 * which invariant broke, never a later signal somewhere else.
 *
 * US_DEBUG_ASSERT is on unless NDEBUG is defined, and also when USHER_SANITIZE
 * is defined. CMake's Debug build (the sanitizer build of scripts/test.sh) does
 * not define NDEBUG; RelWithDebInfo and Release do. (CMakeLists.txt does not
 * pass USHER_SANITIZE as a compile definition today; the sanitizer build gets
 * the checks through its Debug build type.) When off, the condition is not
 * evaluated, but it is still compiled, so the variables it names stay "used".
 * US_DEBUG_ASSERTS (0 or 1) lets a caller skip the set-up of a debug check.
 */
#ifndef US_ASSERT_H
#define US_ASSERT_H

#if !defined(NDEBUG) || defined(USHER_SANITIZE)
#define US_DEBUG_ASSERTS 1
#else
#define US_DEBUG_ASSERTS 0
#endif

/* Report a failed check on stderr and abort(). */
_Noreturn void us_assert_fail(const char *expr, const char *file, int line, const char *func);

#define US_ASSERT(cond) ((cond) ? (void)0 : us_assert_fail(#cond, __FILE__, __LINE__, __func__))

#if US_DEBUG_ASSERTS
#define US_DEBUG_ASSERT(cond) US_ASSERT(cond)
#else
#define US_DEBUG_ASSERT(cond) ((void)sizeof(!(cond)))
#endif

#endif
