"""One-sided binomial tests for the serving tests' shares (test_serve_cli.sh).

A share counted over a few hundred requests - or a few dozen, on a machine that
carries little (pinned, beside a CPU hog) - is a sample: a check that compares it
with a target as if it were exact fails a server that meets the target a large
part of the time. These say whether the sample shows, at the given confidence,
that the true share misses the target.
"""


def cdf(k, n, p):
    """P(X <= k) for X ~ Binomial(n, p) (summed term by term, no big integers)."""
    if k < 0:
        return 0.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if k >= n else 0.0
    total, pmf = 0.0, (1.0 - p) ** n
    for i in range(min(k, n) + 1):
        total += pmf
        pmf *= (n - i) / (i + 1) * p / (1.0 - p)
    return min(total, 1.0)


def above(count, n, p, alpha=0.05):
    """True when `count` of `n` shows a rate above p at confidence 1 - alpha."""
    return count > 0 and 1.0 - cdf(count - 1, n, p) < alpha


def below(count, n, p, alpha=0.05):
    """True when `count` of `n` shows a rate below p at confidence 1 - alpha."""
    return count < n and cdf(count, n, p) < alpha
