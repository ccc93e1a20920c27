"""YAML for Experiment files with limits: ``yaml.SafeLoader`` that refuses a text beyond a
size, nesting beyond a depth and aliases that expand beyond a number of nodes (the "billion
laughs"), so that no input can make loading or validating run for minutes or exhaust memory."""

from __future__ import annotations

from typing import Any

import yaml

MAX_TEXT_CHARS = 4 * 1024 * 1024
"""Largest YAML text accepted (characters); Katib Experiments are a few kilobytes."""

MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences accepted."""

MAX_EXPANDED_NODES = 100_000
"""Most nodes a document may hold once every alias is expanded (a 1 KB alias bomb holds
billions); a hand-written Experiment holds a few hundred."""


class YAMLLimitError(yaml.YAMLError):
    """A YAML text beyond one of the limits; ``problem`` says which, ``problem_mark`` where."""

    def __init__(self, problem: str, mark: yaml.Mark | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark
        self.context = None


class LimitedSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (plain data only) that enforces ``MAX_DEPTH`` while composing and
    ``MAX_EXPANDED_NODES`` before constructing each document, and turns a value Python cannot
    build (an integer of more than 4300 digits) into a ``yaml.YAMLError``."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YAMLLimitError(
                    f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: Any) -> Any:
        _check_expansion(node)
        try:
            return super().construct_document(node)
        except (ValueError, OverflowError) as e:
            # int() refuses more than sys.get_int_max_str_digits() digits.
            raise YAMLLimitError(f"a value cannot be read: {e}", node.start_mark) from e


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose node tree, aliases expanded, exceeds ``MAX_EXPANDED_NODES``.

    Sizes are memoised per node object (an alias is the same object as its anchor), so the
    walk is linear in the distinct nodes whatever the expansion; the graph of a composed
    document is acyclic except through recursive aliases, which are refused too."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    # Iterative post-order walk: depth is bounded by MAX_DEPTH already, but recursion
    # through aliases could still go deep.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            sizes[key] = total
            if total > MAX_EXPANDED_NODES:
                raise YAMLLimitError(
                    f"aliases expand to more than {MAX_EXPANDED_NODES} nodes", node.start_mark
                )
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YAMLLimitError("an alias refers to a node that contains it", node.start_mark)
        on_path.add(key)
        stack.append((node, True))
        stack += [(child, False) for child in _children(node) if id(child) not in sizes]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def safe_load_all(text: str) -> list[Any]:
    """Every document of ``text``, read with ``LimitedSafeLoader``; raises ``yaml.YAMLError``
    (``YAMLLimitError`` for a limit) and nothing else."""
    if len(text) > MAX_TEXT_CHARS:
        raise YAMLLimitError(
            f"the text holds {len(text)} characters, more than the {MAX_TEXT_CHARS} accepted"
        )
    loader = LimitedSafeLoader(text)
    try:
        documents = []
        while loader.check_data():
            documents.append(loader.get_data())
        return documents
    except RecursionError as e:  # the scanner and parser recurse too, on other shapes
        raise YAMLLimitError("nested too deeply to read") from e
    finally:
        loader.dispose()
