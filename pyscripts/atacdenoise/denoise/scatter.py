"""Chromosome groups of about equal length, for denoising one sample as parallel tasks.

Each group is denoised on its own (``atacdenoise denoise --chroms``; the
library depth is still measured on the whole input, so every group scales
its input as a whole run does) and ``atacdenoise merge`` gathers the groups
into the output set of one run. Denoising time follows the bases denoised,
so groups are balanced by total length.
"""

from __future__ import annotations

from atacdenoise.errors import InputError


def chrom_groups(chrom_sizes: dict[str, int], n_groups: int) -> list[list[str]]:
    """``chrom_sizes`` split into at most ``n_groups`` groups balanced by total length.

    Greedy, longest first: each chromosome joins the group with the fewest
    bases so far (the lowest-numbered on a tie), so the result depends only on
    the sizes. Within a group chromosomes keep their ``chrom_sizes`` order;
    groups are ordered by their first chromosome. Never returns an empty group
    (fewer chromosomes than ``n_groups`` give one group per chromosome).
    """
    if n_groups < 1:
        raise InputError("--groups", f"must be at least 1, got {n_groups}")
    if not chrom_sizes:
        raise InputError(None, "no chromosomes to group")
    totals, members = [0] * min(n_groups, len(chrom_sizes)), [[] for _ in range(min(n_groups, len(chrom_sizes)))]
    rank = {chrom: i for i, chrom in enumerate(chrom_sizes)}
    for chrom in sorted(chrom_sizes, key=lambda c: (-chrom_sizes[c], rank[c])):
        smallest = totals.index(min(totals))
        totals[smallest] += chrom_sizes[chrom]
        members[smallest].append(chrom)
    groups = [sorted(group, key=rank.__getitem__) for group in members]
    return sorted(groups, key=lambda group: rank[group[0]])


def group_chroms(chrom_sizes: dict[str, int], group: str) -> list[str]:
    """The chromosomes of group ``"I/N"`` (I from 1) of :func:`chrom_groups`.

    ``[]`` when there are fewer than I groups (fewer chromosomes than N): such
    a task writes an empty output set and the merge passes over it, so a
    pipeline can always run N tasks.
    """
    index, n_groups = _parse_group(group)
    groups = chrom_groups(chrom_sizes, n_groups)
    return groups[index - 1] if index <= len(groups) else []


def _parse_group(group: str) -> tuple[int, int]:
    index, _, n_groups = group.partition("/")
    if not (index.isdigit() and n_groups.isdigit() and 1 <= int(index) <= int(n_groups)):
        raise InputError("--group", f"expected I/N with 1 <= I <= N (e.g. 2/4), got {group!r}")
    return int(index), int(n_groups)
