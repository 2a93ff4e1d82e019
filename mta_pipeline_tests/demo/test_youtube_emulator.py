"""The YouTube Data API emulator, driven by the real google-api-python-client over HTTP."""

from __future__ import annotations

import html
import http.client
import json
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from typing import Any

import pytest
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from mta_pipeline.config import ConfigError
from mta_pipeline.core.youtube_api import comment_rows
from mta_pipeline.demo import youtube_emulator as ye
from mta_pipeline.demo.youtube_emulator import YouTubeEmulator, html_display, plain_display

KEY = "AIzaTEST-emulator-key-0001"
DISABLED = "AIzaTEST-disabled-key-0002"
FORBIDDEN = "forbidden_A"
NOT_FOUND = "notfound__A"
FAILING = "procfail__A"
OVERRIDES = {
    FORBIDDEN: ye.COMMENTS_FORBIDDEN,
    NOT_FOUND: ye.COMMENTS_NOT_FOUND,
    FAILING: ye.PROCESSING_FAILURE,
}
ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def random_vids(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(ID_CHARS) for _ in range(11)) for _ in range(count)]


SAMPLE = random_vids(400)


@pytest.fixture
def emu():
    with YouTubeEmulator(api_keys=(KEY,), disabled_keys=(DISABLED,), overrides=OVERRIDES) as e:
        yield e


def service(endpoint: str, key: str = KEY) -> Any:
    return build(
        "youtube",
        "v3",
        developerKey=key,
        client_options={"api_endpoint": endpoint},
        static_discovery=True,
    )


def threads_call(yt: Any, vid: str, **params: Any) -> dict[str, Any]:
    return yt.commentThreads().list(part="snippet", videoId=vid, **params).execute(num_retries=0)


def video_of(emu: YouTubeEmulator, category: str, min_threads: int = 0) -> str:
    return next(
        v
        for v in SAMPLE
        if emu.category(v) == category and len(emu.comment_threads(v)) >= min_threads
    )


def error_of(call: Any) -> tuple[int, dict[str, Any]]:
    """(HTTP status, the body's `error` object) of a call that must fail."""
    with pytest.raises(HttpError) as info:
        call()
    return info.value.resp.status, json.loads(info.value.content)["error"]


def raw_get(endpoint: str, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(endpoint + path, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def comment_of(thread: dict[str, Any]) -> dict[str, Any]:
    """The top-level comment's snippet: where textDisplay and textOriginal live."""
    return thread["snippet"]["topLevelComment"]["snippet"]


# -- videos.list ---------------------------------------------------------------------------


def test_videos_list_of_50_ids_omits_exactly_the_deleted_ones(emu):
    deleted = video_of(emu, ye.DELETED)
    vids = [deleted, *SAMPLE[:49]] if deleted not in SAMPLE[:49] else SAMPLE[:50]
    response = (
        service(emu.endpoint)
        .videos()
        .list(part="snippet,statistics", id=",".join(vids))
        .execute(num_retries=0)
    )
    kept = [v for v in vids if emu.category(v) != ye.DELETED]
    assert deleted not in kept and len(kept) < 50
    assert ids(response["items"]) == kept
    assert response["items"] == [emu.video_resource(v) for v in kept]
    assert response["kind"] == "youtube#videoListResponse"
    assert response["pageInfo"] == {"totalResults": len(kept), "resultsPerPage": len(kept)}
    assert "nextPageToken" not in response
    assert emu.video_resource(deleted) is None


def test_video_fields_follow_the_api(emu):
    for vid in SAMPLE[:60]:
        item = emu.video_resource(vid)
        if item is None:
            continue
        snippet, stats = item["snippet"], item["statistics"]
        assert item["kind"] == "youtube#video" and item["id"] == vid and item["etag"]
        assert re.fullmatch(r"UC[A-Za-z0-9_-]{22}", snippet["channelId"])
        assert RFC3339.fullmatch(snippet["publishedAt"])
        assert snippet["categoryId"] == "10" and snippet["liveBroadcastContent"] == "none"
        assert snippet["localized"] == {
            "title": snippet["title"],
            "description": snippet["description"],
        }
        assert snippet["channelTitle"] and snippet["defaultAudioLanguage"]
        assert all(isinstance(v, str) and v.isdigit() for v in stats.values())
        assert ("commentCount" in stats) == (emu.category(vid) != ye.COMMENTS_DISABLED)
        if emu.category(vid) == ye.NO_COMMENTS:
            assert stats["commentCount"] == "0"
        if emu.category(vid) == ye.OK:
            assert int(stats["commentCount"]) >= len(emu.comment_threads(vid)) >= 1


def test_part_selects_the_returned_parts_and_titles_are_honoured():
    vid = SAMPLE[0]
    with YouTubeEmulator(titles={vid: "Étude in C — «test» & co"}, overrides={vid: ye.OK}) as e:
        item = service(e.endpoint, "demo-key").videos().list(part="snippet", id=vid).execute()
    assert item["items"][0]["snippet"]["title"] == "Étude in C — «test» & co"
    assert "statistics" not in item["items"][0]


def test_categories_are_stable_and_roughly_in_proportion(emu):
    other = YouTubeEmulator(overrides=OVERRIDES)
    assert [emu.category(v) for v in SAMPLE] == [other.category(v) for v in SAMPLE]
    shares = {c: sum(emu.category(v) == c for v in SAMPLE) / len(SAMPLE) for c in ye.CATEGORIES}
    assert 0.01 < shares[ye.DELETED] < 0.12 and 0.01 < shares[ye.COMMENTS_DISABLED] < 0.12
    assert 0.02 < shares[ye.NO_COMMENTS] < 0.15 and shares[ye.OK] > 0.7
    assert emu.category("too-short") == ye.DELETED
    assert emu.category(FORBIDDEN) == ye.COMMENTS_FORBIDDEN


def test_content_depends_on_seed_and_vid_only():
    a, b, c = YouTubeEmulator(seed=1), YouTubeEmulator(seed=1), YouTubeEmulator(seed=2)
    vid = next(v for v in SAMPLE if a.category(v) == b.category(v) == ye.OK)
    assert a.video_resource(vid) == b.video_resource(vid) != c.video_resource(vid)
    assert a.comment_threads(vid) == b.comment_threads(vid)
    assert a.comment_texts(vid) == b.comment_texts(vid)


# -- commentThreads.list -------------------------------------------------------------------


def test_relevance_order_and_max_results(emu):
    vid = video_of(emu, ye.OK, min_threads=8)
    response = threads_call(
        service(emu.endpoint), vid, order="relevance", maxResults=5, textFormat="plainText"
    )
    expected = emu.comment_threads(vid, order="relevance")
    assert response["items"] == expected[:5]
    likes = [t["snippet"]["topLevelComment"]["snippet"]["likeCount"] for t in expected]
    assert likes == sorted(likes, reverse=True)
    assert response["kind"] == "youtube#commentThreadListResponse"
    assert response["pageInfo"] == {"totalResults": 5, "resultsPerPage": 5}
    assert response["nextPageToken"]


def test_time_order_is_newest_first(emu):
    vid = video_of(emu, ye.OK, min_threads=8)
    response = threads_call(
        service(emu.endpoint), vid, order="time", maxResults=100, textFormat="plainText"
    )
    expected = emu.comment_threads(vid, order="time")
    assert response["items"] == expected and "nextPageToken" not in response
    dates = [t["snippet"]["topLevelComment"]["snippet"]["publishedAt"] for t in expected]
    assert dates == sorted(dates, reverse=True)
    assert sorted(ids(expected)) == sorted(ids(emu.comment_threads(vid, order="relevance")))


def test_defaults_are_time_order_20_per_page_and_html(emu):
    vid = video_of(emu, ye.OK, min_threads=21)
    response = threads_call(service(emu.endpoint), vid)
    assert ids(response["items"]) == ids(emu.comment_threads(vid, order="time")[:20])
    assert response["pageInfo"]["resultsPerPage"] == 20 and response["nextPageToken"]
    snippets = [t["snippet"]["topLevelComment"]["snippet"] for t in response["items"]]
    texts = emu.comment_texts(vid, order="time")[:20]
    assert [s["textDisplay"] for s in snippets] == [html_display(t, vid) for t in texts]


def test_html_and_plain_text_formats(emu):
    yt = service(emu.endpoint)
    checked = set()
    for vid in SAMPLE:
        if emu.category(vid) != ye.OK:
            continue
        rich = threads_call(yt, vid, order="relevance", maxResults=100, textFormat="html")
        plain = threads_call(yt, vid, order="relevance", maxResults=100, textFormat="plainText")
        texts = emu.comment_texts(vid)
        for h, p, text in zip(rich["items"], plain["items"], texts, strict=True):
            hs, ps = h["snippet"]["topLevelComment"]["snippet"], p["snippet"]["topLevelComment"]
            ps = ps["snippet"]
            assert hs.get("textOriginal") == ps.get("textOriginal")  # raw in both formats
            assert ps.get("textOriginal", text) == text
            assert ps["textDisplay"] == plain_display(text)
            shown = hs["textDisplay"]
            assert shown == html_display(text, vid)
            if "\n" in text:
                assert "<br>" in shown and "\n" not in shown and "\r" not in shown
                checked.add("newline")
            if "&" in text:
                assert "&amp;" in shown
                checked.add("entity")
            if "<3" in text:
                assert "&lt;3" in shown and "<3" not in shown
                checked.add("tag-like")
            if url := re.search(r"https?://[^\s<>\"']+", text):
                assert f'<a href="{url.group().replace("&", "&amp;")}">' in shown
                checked.add("url")
        if len(checked) == 4:
            break
    assert checked == {"newline", "entity", "tag-like", "url"}


def test_plain_text_display_carries_entities_and_the_original_stays_raw(emu):
    """textFormat=plainText: no tags and line breaks kept, yet every & " ' < > is an entity."""
    yt = service(emu.endpoint)
    entities = {"&": "&amp;", '"': "&quot;", "'": "&#39;", "<": "&lt;", ">": "&gt;"}
    seen: Counter[str] = Counter()
    for vid in SAMPLE:
        if emu.category(vid) != ye.OK:
            continue
        page = threads_call(yt, vid, order="relevance", maxResults=100, textFormat="plainText")
        for thread, text in zip(page["items"], emu.comment_texts(vid), strict=True):
            snippet = comment_of(thread)
            display = snippet["textDisplay"]
            assert snippet.get("textOriginal", text) == text  # raw, when it is there
            assert not set(display) & set("\"'<>") and html.unescape(display) == text
            assert display.count("\n") == text.count("\n") and "<br>" not in display
            assert display.count("\r") == text.count("\r")
            for char, entity in entities.items():
                if char in text:
                    assert entity in display
                    seen[char] += 1
            if text.startswith('"'):
                assert display.startswith("&quot;")
                seen["leading quote"] += 1
        if len(seen) == 6 and min(seen.values()) >= 3:
            break
    assert set(seen) == {*entities, "leading quote"} and min(seen.values()) >= 3, seen


def test_plain_display_rendering():
    text = '"Tom" & Jerry\'s <3\r\n¯\\_(ツ)_/¯ at 1:05 https://x.example/?a=1&b=2\n'
    assert plain_display(text) == (
        "&quot;Tom&quot; &amp; Jerry&#39;s &lt;3\r\n¯\\_(ツ)_/¯ at 1:05 "
        "https://x.example/?a=1&amp;b=2\n"
    )


def test_some_threads_come_without_original_text_and_a_client_can_decode_them(emu):
    lacking = Counter(
        "textOriginal" in comment_of(t) for vid in SAMPLE for t in emu.comment_threads(vid)
    )
    assert 0.02 < lacking[False] / lacking.total() < 0.09

    def lacks_an_escaped_original(vid: str) -> bool:
        pairs = zip(emu.comment_threads(vid), emu.comment_texts(vid), strict=True)
        return any(
            "textOriginal" not in comment_of(t) and set(text) & set("&\"'<>") for t, text in pairs
        )

    vid = next(v for v in SAMPLE if lacks_an_escaped_original(v))
    yt = service(emu.endpoint)
    plain = threads_call(yt, vid, order="relevance", maxResults=100, textFormat="plainText")
    rich = threads_call(yt, vid, order="relevance", maxResults=100, textFormat="html")
    texts = emu.comment_texts(vid)
    for p, h, text in zip(
        map(comment_of, plain["items"]), map(comment_of, rich["items"]), texts, strict=True
    ):
        assert ("textOriginal" in p) == ("textOriginal" in h)  # the same in both formats
        assert h["textDisplay"] == html_display(text, vid)
    stored = [row["text"] for row in comment_rows(vid, plain, "relevance")]
    naive = [c.get("textOriginal", c["textDisplay"]) for c in map(comment_of, plain["items"])]
    assert stored == texts != naive  # only decoding the display gets every text right


def test_html_display_rendering():
    shown = html_display('Tom & "Jerry" <3\r\nat 1:05 see https://x.example/?a=1&b=2', "VID")
    assert shown == (
        "Tom &amp; &quot;Jerry&quot; &lt;3<br>at "
        '<a href="https://www.youtube.com/watch?v=VID&amp;t=65">1:05</a> see '
        '<a href="https://x.example/?a=1&amp;b=2">https://x.example/?a=1&amp;b=2</a>'
    )


def test_paging_walks_every_thread_once(emu):
    vid = video_of(emu, ye.OK, min_threads=15)
    yt = service(emu.endpoint)
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        extra = {"pageToken": token} if token else {}
        page = threads_call(
            yt, vid, order="relevance", maxResults=7, textFormat="plainText", **extra
        )
        pages += 1
        assert page["pageInfo"]["totalResults"] == len(page["items"]) <= 7
        seen += ids(page["items"])
        token = page.get("nextPageToken")
        if not token:
            break
    assert seen == ids(emu.comment_threads(vid, order="relevance"))
    assert pages == -(-len(seen) // 7)
    status, error = error_of(lambda: threads_call(yt, vid, pageToken="not-a-token"))
    assert status == 400 and error["errors"][0]["reason"] == "invalidPageToken"


def test_no_comments_is_an_empty_page(emu):
    vid = video_of(emu, ye.NO_COMMENTS)
    response = threads_call(service(emu.endpoint), vid, order="relevance", maxResults=5)
    assert response["items"] == [] and "nextPageToken" not in response
    assert emu.video_resource(vid)["statistics"]["commentCount"] == "0"


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "status", "reason"),
    [
        (ye.COMMENTS_DISABLED, 403, "commentsDisabled"),
        (ye.DELETED, 404, "videoNotFound"),
        (ye.COMMENTS_NOT_FOUND, 404, "videoNotFound"),
        (ye.COMMENTS_FORBIDDEN, 403, "forbidden"),
        (ye.PROCESSING_FAILURE, 400, "processingFailure"),
    ],
)
def test_comment_thread_errors(emu, category, status, reason):
    vid = {v: k for k, v in OVERRIDES.items()}.get(category) or video_of(emu, category)
    yt = service(emu.endpoint)
    for _ in range(2):  # the same answer every time
        got, error = error_of(lambda: threads_call(yt, vid, order="relevance", maxResults=5))
        assert (got, error["code"], error["errors"][0]["reason"]) == (status, status, reason)
        assert error["message"] and error["status"] and error["errors"][0]["domain"]
    assert emu.units_used == 2  # failed calls cost quota too
    assert emu.comment_threads(vid) == []
    listed = emu.video_resource(vid) is not None
    assert listed == (category != ye.DELETED)


def test_quota_cap_then_quota_exceeded_uncharged_until_reset(emu):
    emu.set_faults(quota_cap=3)
    yt = service(emu.endpoint)
    ok = video_of(emu, ye.OK)
    yt.videos().list(part="snippet", id=ok).execute(num_retries=0)
    error_of(lambda: threads_call(yt, video_of(emu, ye.DELETED)))
    threads_call(yt, ok)
    assert emu.units_used == 3
    for _ in range(2):
        status, error = error_of(lambda: threads_call(yt, ok))
        assert status == 403 and error["errors"][0]["reason"] == "quotaExceeded"
        assert error["errors"][0]["domain"] == "youtube.quota"
    assert emu.units_used == 3 and len(emu.requests) == 5
    emu.reset_quota()
    threads_call(yt, ok)
    assert emu.units_used == 1
    emu.set_faults(quota_cap=None)


@pytest.mark.parametrize(
    ("key", "status", "reason"),
    [("AIzaTEST-unknown-key", 400, "badRequest"), (DISABLED, 403, "accessNotConfigured")],
)
def test_bad_keys_fail_uncharged(emu, key, status, reason):
    yt = service(emu.endpoint, key)
    got, error = error_of(lambda: yt.videos().list(part="snippet", id=SAMPLE[0]).execute())
    assert (got, error["errors"][0]["reason"]) == (status, reason)
    if key != DISABLED:
        assert error["details"][0]["reason"] == "API_KEY_INVALID"
    assert emu.units_used == 0


def test_missing_key_part_and_unknown_path(emu):
    status, body = raw_get(emu.endpoint, f"/youtube/v3/videos?part=snippet&id={SAMPLE[0]}")
    assert (status, body["error"]["errors"][0]["reason"]) == (403, "forbidden")
    status, body = raw_get(emu.endpoint, f"/youtube/v3/videos?id={SAMPLE[0]}&key={KEY}")
    assert (status, body["error"]["errors"][0]["reason"]) == (400, "required")
    status, body = raw_get(emu.endpoint, f"/youtube/v3/search?part=snippet&key={KEY}")
    assert status == 404 and body["error"]["code"] == 404
    assert emu.units_used == 1  # only the keyed, routed request with a missing part


def test_invalid_parameters_are_400(emu):
    yt = service(emu.endpoint)
    vid = video_of(emu, ye.OK)
    too_many = ",".join(random_vids(51, seed=9))
    calls = [
        lambda: yt.videos().list(part="snippet", id=too_many).execute(),
        lambda: yt.videos().list(part="snippet", id=vid, maxResults=5).execute(),
        lambda: threads_call(yt, vid, maxResults=0),
        lambda: threads_call(yt, vid, maxResults=101),
    ]
    for call in calls:
        status, error = error_of(call)
        assert status == 400 and error["errors"][0]["reason"] in {"invalidFilters", "invalid"}
    assert emu.units_used == len(calls)


def test_rate_limit_and_5xx_faults(emu):
    yt = service(emu.endpoint)
    emu.set_faults(rate_limit_rate=1.0)
    status, error = error_of(lambda: threads_call(yt, video_of(emu, ye.OK)))
    assert (status, error["errors"][0]["reason"]) == (403, "rateLimitExceeded")
    emu.set_faults(rate_limit_rate=0.0, error_5xx_rate=1.0)
    statuses = set()
    for _ in range(12):
        status, error = error_of(lambda: yt.videos().list(part="id", id=SAMPLE[0]).execute())
        assert error["errors"][0]["reason"] == "backendError"
        statuses.add(status)
    assert statuses == {500, 503}
    assert emu.units_used == 13


def test_dropped_connection_raises_connection_reset(emu):
    yt = service(emu.endpoint)
    emu.set_faults(drop_rate=1.0)
    with pytest.raises(ConnectionResetError):
        yt.videos().list(part="id", id=SAMPLE[0]).execute(num_retries=0)
    assert len(emu.requests) == 1 and emu.units_used == 1  # httplib2 did not resend it
    emu.set_faults(drop_rate=0.0)
    assert yt.videos().list(part="id", id=SAMPLE[0]).execute(num_retries=0)["items"] is not None


def test_malformed_json_comes_back_as_a_string_not_a_dict(emu):
    """The client swallows JSONDecodeError and returns the raw text: callers must check."""
    yt = service(emu.endpoint)
    emu.set_faults(malformed_rate=1.0)
    body = yt.videos().list(part="snippet", id=SAMPLE[0]).execute(num_retries=0)
    assert isinstance(body, str) and body.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)


def test_faults_are_deterministic_for_a_seed():
    def outcomes(seed: int) -> list[int]:
        knobs = {"error_5xx_rate": 0.3, "rate_limit_rate": 0.2, "malformed_rate": 0.2}
        with YouTubeEmulator(seed=seed, **knobs) as e:
            return [
                raw_get_status(e.endpoint, "/youtube/v3/videos?part=id&id=x&key=demo-key")
                for _ in range(25)
            ]

    assert outcomes(5) == outcomes(5) != outcomes(6)
    assert set(outcomes(5)) >= {200, 403}


def raw_get_status(endpoint: str, path: str) -> int:
    try:
        with urllib.request.urlopen(endpoint + path, timeout=5) as response:
            body = response.read()
            return 200 if _is_json(body) else -1
    except urllib.error.HTTPError as error:
        return error.code


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def test_set_faults_refuses_nonsense(emu):
    with pytest.raises(ValueError):
        emu.set_faults(drop_rate=1.5)
    with pytest.raises(ValueError):
        emu.set_faults(error_5xx_rate=0.7, rate_limit_rate=0.7)
    with pytest.raises(TypeError):
        emu.set_faults(jitter=1)


def test_latency_delays_every_answer(emu):
    emu.set_faults(latency_s=0.15)
    started = time.perf_counter()
    raw_get(emu.endpoint, "/youtube/v3/videos?part=id&id=x")
    assert time.perf_counter() - started >= 0.15


# -- transport, secrecy, concurrency -------------------------------------------------------


def test_keep_alive_reuses_one_connection(emu):
    conn = http.client.HTTPConnection("127.0.0.1", int(emu.endpoint.rsplit(":", 1)[1]), timeout=5)
    try:
        conn.request("GET", f"/youtube/v3/videos?part=id&id={SAMPLE[0]}&key={KEY}")
        first = conn.getresponse()
        assert first.status == 200 and first.getheader("Content-Length")
        first.read()
        sock = conn.sock
        conn.request("GET", f"/youtube/v3/videos?part=id&id={SAMPLE[1]}&key={KEY}")
        assert conn.getresponse().status == 200 and conn.sock is sock
    finally:
        conn.close()


def test_requests_are_recorded_without_the_key_and_nothing_is_logged(emu, capfd):
    yt = service(emu.endpoint)
    vid = video_of(emu, ye.OK)
    threads_call(yt, vid, order="relevance", maxResults=5, textFormat="plainText")
    emu.set_faults(drop_rate=1.0)
    with pytest.raises(ConnectionResetError):
        threads_call(yt, vid)
    path, params = emu.requests[0]
    assert path == ye.COMMENT_THREADS_PATH
    assert params == {
        "part": "snippet",
        "videoId": vid,
        "order": "relevance",
        "maxResults": "5",
        "textFormat": "plainText",
        "alt": "json",
    }
    assert all("key" not in p for _, p in emu.requests)
    out, err = capfd.readouterr()
    assert KEY not in out + err + repr(emu.requests)


def test_concurrent_clients_are_all_served_and_charged_once(emu):
    vids = [v for v in SAMPLE if emu.category(v) == ye.OK][:25]
    failures: list[BaseException] = []

    def worker(offset: int) -> None:
        yt = service(emu.endpoint)  # httplib2 is not thread-safe: one service per thread
        try:
            for i, vid in enumerate(vids):
                if (i + offset) % 2:
                    threads_call(yt, vid, order="relevance", maxResults=5)
                else:
                    yt.videos().list(part="snippet,statistics", id=vid).execute(num_retries=0)
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)

    emu.set_faults(latency_s=0.01)  # served one at a time, 200 calls would take 2 s
    workers = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert failures == []
    assert emu.units_used == 200 == len(emu.requests)
    assert time.perf_counter() - started < 1.6


# -- text coverage -------------------------------------------------------------------------


def test_text_covers_the_awkward_cases():
    emu = YouTubeEmulator()
    vids = random_vids(200, seed=42)
    videos = [v for v in map(emu.video_resource, vids) if v is not None]
    channel = {v["id"]: v["snippet"]["channelId"] for v in videos}
    descriptions = [v["snippet"]["description"] for v in videos]
    comments = [
        (vid, t["snippet"]["topLevelComment"]["snippet"], text)
        for vid in vids
        for t, text in zip(emu.comment_threads(vid), emu.comment_texts(vid), strict=True)
    ]
    texts = [text for _, _, text in comments]
    everything = descriptions + texts

    def some(pattern: str, corpus: list[str]) -> bool:
        return any(re.search(pattern, text, re.MULTILINE) for text in corpus)

    assert any("\t" in d and "\r\n" in d and d.count("\n") > 3 for d in descriptions)
    assert some(r"^0:00 Intro$", descriptions) and some(r"^\d\d:\d\d:\d\d \S", descriptions)
    assert some(r"https?://\S+", descriptions) and some(r"https?://\S+", texts)
    assert some("&amp;", everything) and some("&quot;", everything)
    assert some("👨\u200d👩\u200d👧", everything) and some("👍🏽", everything)
    assert some("[\U0001f3fb-\U0001f3ff]", texts) and some("❤\ufe0f", texts)
    assert some("[\u0400-\u04ff]", texts) and some("[\u0400-\u04ff]", descriptions)
    assert some("[\u3040-\u30ff]", texts) and some("[\u3040-\u30ff]", descriptions)
    assert some(r"\A\s*https?://\S+\s*\Z", texts)  # a comment that is only a link
    assert any(d.startswith('"') and "\t" in d for d in descriptions)
    assert some(r'\A"[^"\n]+" ', texts) and some(r'\A"[^"]*\Z', texts)  # closed and unclosed
    assert some(r'\w "\w+" \w', texts) and some(r"\w'\w", texts)
    assert some(r" & ", texts) and some("<3", texts) and some(r"\\", texts)
    assert {"NA", "null", "nan"} <= set(texts) and some(r"\w \b(NA|null|NaN)\b", texts)
    assert some(r"[^\r]\n.", texts) and some(r"\r\n", texts) and some(r"\n\Z", texts)

    uploader = [c for vid, c, _ in comments if c["authorChannelId"]["value"] == channel[vid]]
    assert uploader

    spread: dict[str, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    for vid, c, text in comments:
        spread[text][0].add(c["authorChannelId"]["value"])
        spread[text][1].add(vid)
    assert any(
        "http" in text and len(authors) >= 3 and len(videos_) >= 3
        for text, (authors, videos_) in spread.items()
    ), "no spam text repeated by several authors on several videos"

    by_video: dict[tuple[str, str], set[str]] = defaultdict(set)
    for vid, c, text in comments:
        by_video[vid, text].add(c["authorChannelId"]["value"])
    assert any(len(authors) >= 2 for authors in by_video.values())

    declared = [v["snippet"].get("defaultLanguage") for v in videos]
    assert None in declared and any(declared)
    cyrillic_but_not_ru = [
        v
        for v in videos
        if re.search("[\u0400-\u04ff]", v["snippet"]["title"])
        and v["snippet"].get("defaultLanguage") not in (None, "ru")
    ]
    assert cyrillic_but_not_ru  # declared languages are not to be trusted
    for _, c, _ in comments:
        assert c["authorDisplayName"].startswith("@") and isinstance(c["likeCount"], int)
        assert RFC3339.fullmatch(c["publishedAt"]) and c["updatedAt"] >= c["publishedAt"]


# -- configuration and command line --------------------------------------------------------


def test_from_env_reads_the_knobs_and_kwargs_win(monkeypatch):
    monkeypatch.setenv(ye.MTA_EMULATOR_RATE_LIMIT_RATE, "1")
    monkeypatch.setenv(ye.MTA_EMULATOR_QUOTA_CAP, "1")
    monkeypatch.setenv(ye.MTA_EMULATOR_LATENCY_MS, "0")
    with YouTubeEmulator.from_env() as e:
        path = "/youtube/v3/videos?part=id&id=x&key=demo-key"
        assert raw_get(e.endpoint, path)[1]["error"]["errors"][0]["reason"] == "rateLimitExceeded"
        assert raw_get(e.endpoint, path)[1]["error"]["errors"][0]["reason"] == "quotaExceeded"
    with YouTubeEmulator.from_env(rate_limit_rate=0.0, quota_cap=None) as e:
        assert raw_get(e.endpoint, path)[0] == 200
        assert raw_get(e.endpoint, path)[0] == 200
    monkeypatch.setenv(ye.MTA_EMULATOR_DROP_RATE, "lots")
    with pytest.raises(ConfigError, match=ye.MTA_EMULATOR_DROP_RATE):
        YouTubeEmulator.from_env()


def test_stop_is_idempotent_and_endpoint_needs_start():
    emu = YouTubeEmulator()
    with pytest.raises(RuntimeError):
        _ = emu.endpoint
    endpoint = emu.start()
    assert emu.endpoint == endpoint and endpoint.startswith("http://127.0.0.1:")
    emu.stop()
    emu.stop()


def test_command_line_serves_until_interrupted():
    process = subprocess.Popen(
        [sys.executable, "-m", "mta_pipeline.demo.youtube_emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        endpoint = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", endpoint)
        assert (
            raw_get(endpoint, f"/youtube/v3/videos?part=id&id={SAMPLE[0]}&key=demo-key")[0] == 200
        )
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0  # generous: CI boxes can be loaded
        assert "demo-key" not in process.stdout.read() + process.stderr.read()
    finally:
        process.kill()
        process.wait()
