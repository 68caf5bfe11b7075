"""`reportqa bench --runs N`: every figure is the median over whole runs (pure, no index built)."""

from retrieval.bench import BenchReport, CorpusBench, median_of


def _row(build: float, cold: float, asks: list[float]) -> CorpusBench:
    return CorpusBench(name="full", reports=150, paragraphs=13192, sentences=61354, build_seconds=build,
                       query_p50_ms=build / 10, query_p95_ms=build / 5, queries=161, cold_ask_seconds=cold,
                       cold_ask_rss_mb=200.0, index_mb=245.0, first_ask_seconds=1.6, cold_ask_runs=asks,
                       build_peak_rss_mb=build * 6, extra={"HNSW recall@10": "0.99"})


def test_median_of_runs_takes_each_figure_from_the_middle_run_and_keeps_every_cold_ask():
    runs = [BenchReport(rows=[_row(b, c, [c, c + 0.1])], peak_rss_mb=b * 6, load_before=(b, 0, 0),
                        load_after=(0, 0, b)) for b, c in ((250.0, 0.9), (239.0, 0.87), (300.0, 1.2))]
    merged = median_of(runs)
    (row,) = merged.rows
    assert (row.build_seconds, row.cold_ask_seconds, row.query_p95_ms) == (250.0, 0.9, 50.0)
    assert row.cold_ask_runs == [0.9, 1.0, 0.87, 0.97, 1.2, 1.3]
    assert merged.runs == 3 and merged.peak_rss_mb == 1500.0
    assert merged.load_before == (250.0, 0, 0) and merged.load_after == (0, 0, 300.0)
    assert merged.to_text().startswith("median of 3 runs") and merged.to_dict()["runs"] == 3
    single = median_of(runs[:1])
    assert single.rows[0].build_seconds == 250.0 and not single.to_text().startswith("median")
