"""Issue 15 item 4: no import cycle among difftui's modules.

Every import counts: one at the top of a module, one inside a function (it runs when the function does, and a cycle
held together that way breaks on the first refactor that moves it up) and one under TYPE_CHECKING (a type checker
follows it). The graph is grimp's, the library import-linter runs on; for every import a -> b the test asks whether
b reaches a again.
"""

import grimp


def import_cycles(graph: grimp.ImportGraph, prefix: str = "") -> dict[frozenset[str], str]:
    """Every cycle through an import edge, as {its modules: 'a -> b -> ... -> a (a line N)'}; one entry per set."""
    found: dict[frozenset[str], str] = {}
    modules = sorted(m for m in graph.modules if m.startswith(prefix))
    for a in modules:
        for b in sorted(graph.find_modules_directly_imported_by(a)):
            if not b.startswith(prefix) or b == a:
                continue
            back = graph.find_shortest_chain(importer=b, imported=a)
            if back is None:
                continue
            cycle = (a, *back)
            key = frozenset(cycle)
            if key not in found:
                line = graph.get_import_details(importer=a, imported=b)[0]["line_number"]
                found[key] = f"{' -> '.join(cycle)} ({a} line {line})"
    return found


def test_the_cycle_finder_names_each_cycle_once_with_its_line():
    graph = grimp.ImportGraph()
    graph.add_import(importer="p.a", imported="p.b", line_number=3, line_contents="from p import b")
    graph.add_import(importer="p.b", imported="p.c", line_number=7, line_contents="    from p import c")
    graph.add_import(importer="p.c", imported="p.a", line_number=9, line_contents="import p.a")
    graph.add_import(importer="p.d", imported="p.a", line_number=1, line_contents="import p.a")   # no way back
    assert import_cycles(graph, "p.") == {frozenset({"p.a", "p.b", "p.c"}): "p.a -> p.b -> p.c -> p.a (p.a line 3)"}


def test_no_import_cycle_among_difftuis_modules():
    graph = grimp.build_graph("difftui.engine", "difftui.tui", cache_dir=None)
    assert len(graph.modules) > 150                 # the whole tree was read, not an empty namespace
    cycles = import_cycles(graph, "difftui.")
    assert sorted(cycles.values()) == [], "import cycles:\n" + "\n".join(sorted(cycles.values()))
