/* test_oip.c - placeholder while being written */
#include "test.h"
TEST(placeholder) {}
TEST_MAIN(TEST_ENTRY(placeholder))
