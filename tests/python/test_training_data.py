"""The training-data build (scripts/training/) on a tiny catalog made here: a .mo file written
byte by byte, a gold folder of one set, and the steps `build` runs on them. Nothing is
downloaded."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from training import manifest  # noqa: E402
from training.build import Language, direction, finish_all, new_languages  # noqa: E402
from training.catalogs import CatalogError, language_of, parse_mo, write_mo  # noqa: E402
from training.clean import clean_pair  # noqa: E402
from training.gold import GoldFilter, normalise, read_gold_sentences  # noqa: E402
from training.report import tables  # noqa: E402

GERMAN = [
    ("Open the _File menu to continue", "Öffnen Sie das Menü _Datei, um fortzufahren"),
    ("Could not open %s for reading", "%s konnte nicht zum Lesen geöffnet werden"),
    ("Found {count} files in the folder", "{count} Dateien im Ordner gefunden"),
    ("Balances from ~a to ~a today", "Salden von ~a bis ~a heute"),
    ("Click <b>Apply</b> to save your changes", "Klicken Sie auf <b>Anwenden</b>"),
    ("Quit", "Beenden"),
    ("Show hidden files in this folder", "Verborgene Dateien in diesem Ordner anzeigen"),
    ("menu\x04Show hidden files in  this folder", "Verborgene Dateien in diesem Ordner anzeigen"),
    ("The house is very small today", "Das Haus ist heute sehr klein"),
    ("Some words were not translated here", "Some words were not translated here"),
    ("One file was deleted from disk\x00Many files were deleted", "Eine Datei\x00Viele Dateien"),
    ("Visit https://example.org for more help", "Besuchen Sie https://example.org"),
    ("Pictures go to the folder ~/Pictures.", "Bilder kommen in den Ordner ~/Bilder."),
    ("Use the --force option to overwrite", "Verwenden Sie --force zum Überschreiben"),
    ("Columns:\n  -1 hide the lines of the first file", "Spalten:\n  -1 Zeilen der ersten Datei"),
    ("This is a sentence that is long", "Nein"),
]
CHINESE = [("Open the selected file in a new window", "在新窗口中打开所选文件(_O)")]


@pytest.fixture()
def tree(tmp_path):
    mo = tmp_path / "usr/share/locale/de/LC_MESSAGES/demo.mo"
    mo.parent.mkdir(parents=True)
    mo.write_bytes(write_mo(GERMAN))
    zh = tmp_path / "usr/share/locale/zh_CN/LC_MESSAGES/demo.mo"
    zh.parent.mkdir(parents=True)
    zh.write_bytes(write_mo(CHINESE))
    gold = tmp_path / "gold/deen"
    gold.mkdir(parents=True)
    # Tokenised and lower-cased, as in the gold sets: still the same sentence.
    (gold / "deen.src").write_text("das haus ist heute sehr klein\n", encoding="utf-8")
    (gold / "deen.tgt").write_text("the house is very small today .\n", encoding="utf-8")
    (gold / "deen.gold").write_text("0-0\n", encoding="utf-8")
    return tmp_path


def build(tree):
    gold = GoldFilter(read_gold_sentences(tree / "gold"))
    langs = new_languages()
    for mo in sorted(tree.glob("usr/share/locale/*/LC_MESSAGES/*.mo")):
        langs[language_of(str(mo.relative_to(tree)))].add_catalog(parse_mo(mo.read_bytes()))
    out = tree / "out"
    stats, names = finish_all(langs, gold, out)
    return stats, {lang: out / name for lang, name in names.items()}


def test_parse_mo_reads_contexts_plurals_and_charset():
    entries = parse_mo(write_mo(GERMAN))
    assert len(entries) == len(GERMAN)
    by_id = {e.msgid: e for e in entries}
    assert "Show hidden files in  this folder" in by_id  # context removed
    plural = by_id["One file was deleted from disk"]
    assert plural.plural and plural.msgstr == "Eine Datei"
    latin1 = parse_mo(write_mo([("Grüße an alle hier", "Salutations à tous")], "ISO-8859-1"))
    assert latin1[0].msgid == "Grüße an alle hier" and latin1[0].msgstr == "Salutations à tous"
    with pytest.raises(CatalogError):
        parse_mo(b"not a catalog at all, not at all")


def test_language_of_catalog_paths():
    assert language_of("usr/share/locale/zh_CN/LC_MESSAGES/x.mo") == "zh"
    assert language_of("usr/share/locale/zh_TW/LC_MESSAGES/x.mo") is None
    assert language_of("usr/share/games/w/translations/de/LC_MESSAGES/w.mo") == "de"
    assert language_of("usr/share/locale/de/LC_MESSAGES/x.po") is None


def test_build_on_a_tiny_catalog(tree):
    stats, files = build(tree)
    de = stats["de"]
    assert de["catalogs"] == 1 and de["entries"] == len(GERMAN)
    assert de["dropped"]["format"] == 3  # %s, {count}, ~a
    assert de["dropped"]["markup"] == 1
    assert de["dropped"]["short"] == 1  # "Quit"
    assert de["dropped"]["plural"] == 1
    assert de["dropped"]["untranslated"] == 1
    assert de["dropped"]["url_path"] == 2
    assert de["dropped"]["options"] == 2  # an option, an indented help table
    assert de["dropped"]["ratio"] == 1  # "Nein" for seven words
    assert de["duplicates"] == 1  # the context variant, after whitespace normalisation
    assert de["gold_overlap"] == 1  # the house, found despite case, tokens and punctuation
    lines = files["de"].read_text(encoding="utf-8").splitlines()
    assert files["de"].name == "de-en.txt"  # the German gold set's direction
    assert lines == [
        "Öffnen Sie das Menü Datei, um fortzufahren ||| Open the File menu to continue",
        "Verborgene Dateien in diesem Ordner anzeigen ||| Show hidden files in this folder",
    ]
    assert de["pairs"] == 2 and de["words_en"] == 12 and de["words_de"] == 13
    zh = files["zh"].read_text(encoding="utf-8").splitlines()
    assert files["zh"].name == "zh-en.txt"
    assert zh == ["在新窗口中打开所选文件 ||| Open the selected file in a new window"]


def test_directions_follow_the_gold_sets():
    assert direction("de") == ("de", "en") and direction("ja") == ("ja", "en")
    assert direction("fr") == ("en", "fr") and direction("hi") == ("en", "hi")


def test_many_to_one_translations_are_capped():
    lang = Language("de")
    lang.pairs = [("Save the file to disk now", f"Datei jetzt speichern, Variante {i}")
                  for i in range(4)]
    s = lang.finish(GoldFilter([]))
    assert s["capped"] == 2 and s["pairs"] == 2


def test_gold_substring_and_normalisation():
    g = GoldFilter(["私 は 大学 の 学生 です 。 今日 は 朝 から ずっと 晴れ です 。", "Das stimmt nicht !"])
    assert g.hits("私は大学の学生です。今日は朝からずっと晴れです。")
    assert g.hits("Er sagte: 私は大学の学生です。今日は朝からずっと晴れです。 Und dann?")  # long enough: substring
    assert g.hits("das stimmt nicht")
    assert not g.hits("Er sagt, das stimmt nicht immer")  # short gold sentence: exact only
    assert normalise("Ｆｕｌｌ－width  Text!") == "full-widthtext".replace("-", "")


def test_mnemonics_are_stripped_not_dropped():
    assert clean_pair("Save _As another file here", "Speichern _unter als andere Datei", "de") == (
        "Save As another file here", "Speichern unter als andere Datei")
    assert clean_pair("Find &Next match in the text", "&Nächsten Treffer im Text suchen", "de") == (
        "Find Next match in the text", "Nächsten Treffer im Text suchen")
    assert clean_pair("Make ~manual changes to this d~river", "このドライバーを手動で変更(~M)",
                      "ja") == ("Make manual changes to this driver", "このドライバーを手動で変更")
    assert clean_pair("Rock && roll all night long", "Rock && Roll die ganze Nacht", "de") == (
        "Rock & roll all night long", "Rock & Roll die ganze Nacht")


def test_a_changed_deb_is_refused(tmp_path):
    cache = tmp_path
    deb = manifest.deb_path(cache, "demo", "1:1.0-1")
    deb.parent.mkdir(parents=True)
    deb.write_bytes(b"some bytes")
    entry = {"package": "demo", "version": "1:1.0-1", "sha256": manifest.sha256(deb)}
    assert manifest.fetch(cache, entry) == deb
    deb.write_bytes(b"other bytes")
    with pytest.raises(manifest.ManifestError, match="refusing"):
        manifest.fetch(cache, entry)


def test_the_pinned_manifest_is_complete():
    m = manifest.load(ROOT / "scripts/training/packages.json")
    for e in m["catalogs"] + m["documents"] + m["dictionaries"]:
        assert e["version"] and len(e["sha256"]) == 64, e["package"]
    manuals = {e["manual"] for e in m["documents"]}
    for manual in manuals:  # every manual has its English original, or nothing would pair
        assert any(e["manual"] == manual and e["lang"] in ("en", None) for e in m["documents"])


def test_readme_tables_from_stats(tree):
    stats, _ = build(tree)
    md = tables({"languages": stats})
    rows = md.splitlines()
    assert rows[2].startswith(f"| de–en | 1 | {len(GERMAN)} |") and "**2**" in rows[2]
    assert rows[3].startswith("| zh–en | 1 | 1 |")


def test_freedict_entries():
    from training.lexicon import entries

    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def enc(n):
        s = ""
        while True:
            s, n = b64[n % 64] + s, n // 64
            if n == 0:
                return s

    bodies = ["Haus /haʊ̯s/ <neut, n, sg>\n house <n>, home\n         Note: building\n"
              "   Synonyms: {Gebäude}\n",
              "laufen /ˈlaʊ̯fn̩/ <v>\n1. run\n2. [sport] walk; go\nsee: {gehen}\n"]
    text, index, off = b"", "", 0
    for b in bodies:
        raw = b.encode("utf-8")
        index += f"{b.split(' ', 1)[0]}\t{enc(off)}\t{enc(len(raw))}\n"
        text, off = text + raw, off + len(raw)
    assert entries(index, text) == [("Haus", "house"), ("Haus", "home"), ("laufen", "run"),
                                    ("laufen", "walk"), ("laufen", "go")]


def test_cedict_glosses_become_word_pairs():
    from training.lexicon import cedict_entries

    text = "\n".join([
        "# CC-CEDICT",
        "字符 字符 [zi4 fu2] /character (computing)/",
        "輸入 输入 [shu1 ru4] /to input/to enter/",
        "個 个 [ge4] /individual/CL:個|个[ge4]/",
        "隻 只 [zhi1] /variant of 只[zhi3]/single/",
        "王 王 [Wang2] /surname Wang/",
        "broken line without brackets",
    ])
    assert cedict_entries(text) == [
        ("字符", "character"), ("输入", "input"), ("输入", "enter"), ("个", "individual"),
        ("只", "single"),
    ]


def test_wheel_dictionaries_are_pinned():
    m = manifest.load(ROOT / "scripts" / "training" / "packages.json")
    for e in m.get("wheel_dictionaries", []):
        assert len(e["sha256"]) == 64 and e["version"] and e["member"] and e["format"] == "cedict"


EN_PAGE = b"""<html><head><title>Chapter 2. Packages</title><style>p {}</style></head><body>
<h2>2.1. Installing packages</h2>
<p>The <code>apt</code> tool installs packages. It also removes them, e.g. old ones.</p>
<pre>apt install hello</pre>
<ul><li><p>Use the mirror nearest to you for faster downloads.</p></li><li>Keep the system small and tidy</li></ul>
<p>This paragraph is not in the translation at all, the translator skipped it.</p>
<dl><dt>Debian archive keys</dt></dl>
<p>Packages are signed by the archive key, which apt checks before it installs anything. Two sentences here.</p>
</body></html>"""
DE_PAGE = """<html><head><title>Kapitel 2. Pakete</title></head><body>
<h2>2.1. Pakete installieren</h2>
<p>Das Werkzeug <code>apt</code> installiert Pakete. Es entfernt sie auch, z.B. alte.</p>
<pre>apt install hallo</pre>
<ul><li><p>Verwenden Sie den nächstgelegenen Spiegel für schnellere Downloads.</p></li><li>Halten Sie das System klein und ordentlich</li></ul>
<dl><dt>Schlüssel des Debian-Archivs</dt></dl>
<p>Pakete werden mit dem Archivschlüssel signiert, den apt vor jeder Installation prüft.</p>
</body></html>""".encode()


def test_manual_pages_become_sentence_pairs():
    from training.docs import blocks, pair_pages

    en, de = blocks(EN_PAGE), blocks(DE_PAGE)
    assert ("p", "The apt tool installs packages. It also removes them, e.g. old ones.") in en
    assert not any("apt install" in text for _, text in en)  # <pre> is code, not prose
    assert en[0] == ("title", "Chapter 2. Packages")
    pairs = pair_pages(en, de, "de")
    assert ("The apt tool installs packages.", "Das Werkzeug apt installiert Pakete.") in pairs
    # "e.g." and "z.B." end no sentence: two sentences a side, paired in order
    assert ("It also removes them, e.g. old ones.", "Es entfernt sie auch, z.B. alte.") in pairs
    assert ("Keep the system small and tidy", "Halten Sie das System klein und ordentlich") in pairs
    assert ("Debian archive keys", "Schlüssel des Debian-Archivs") in pairs
    # the paragraph the translation lacks shifts nothing: it pairs with nothing
    assert not any("skipped" in a for a, _ in pairs)
    # two English sentences against one German: the blocks stay whole
    assert (en[-1][1], de[-1][1]) in pairs
    assert all(len(p) == 2 and p[0] and p[1] for p in pairs)


def test_sentences_of_chinese_and_english():
    from training.docs import sentences

    assert sentences("安装软件包。然后重启！「好吗？」最后", "zh") == ["安装软件包。", "然后重启！", "「好吗？」", "最后"]
    assert sentences('It works, cf. the manual. "Really?" Yes. 4 of them.', "en") == [
        "It works, cf. the manual.", '"Really?"', "Yes. 4 of them."]
    assert sentences("6.3.6. Installing software", "de") == ["6.3.6.", "Installing software"]


def test_manual_page_names_and_languages():
    from training.docs import page

    assert page("usr/share/debian-reference/ch02.zh-cn.html", "zh") == ("zh", "ch02")
    assert page("usr/share/debian-reference/ch02.en.html", "en") == ("en", "ch02")
    assert page("usr/share/doc/debian/FAQ/zh-cn/kernel.zh-cn.html.gz", "zh") == ("zh", "kernel")
    assert page("usr/share/doc/installation-guide-amd64/zh_CN/ch01s02.html", None) == ("zh", "ch01s02")
    assert page("usr/share/doc/installation-guide-amd64/en/apa.html", None) == ("en", "apa")
    assert page("usr/share/doc/installation-guide-amd64/zh_TW/apa.html", None) is None
    assert page("usr/share/doc/installation-guide-amd64/xx/apa.html", None) is None
    assert page("usr/share/doc/maint-guide/images/next.png", "en") is None


def test_manual_pairs_are_cleaned_and_kept_from_gold(tree):
    from training.docs import blocks, pair_pages

    lang = Language("de")
    lang.add_page(pair_pages(blocks(EN_PAGE), blocks(DE_PAGE), "de"))
    lang.add_page([("The house is very small today", "Das Haus ist heute sehr klein")])
    s = lang.finish(GoldFilter(read_gold_sentences(tree / "gold")))
    assert s["pages"] == 2 and s["catalogs"] == 0
    assert s["gold_overlap"] == 1
    assert s["dropped"]["short"] >= 2  # the headings and the title are under four words
    assert s["pairs"] == len(lang.pairs) >= 4
    assert ("Keep the system small and tidy", "Halten Sie das System klein und ordentlich") in lang.pairs
    md = tables({"languages": {}, "documents": {"languages": {"de": s}}})
    assert "| pair | pages |" in md and md.splitlines()[-1].startswith("| de–en | 2 |")


def test_a_docs_share_outside_0_to_1_is_refused():
    # Above 1 the catalogs would be asked for a negative number of pairs (a slice that keeps
    # nearly all of them); refused by the argument parser, before any model is read.
    p = subprocess.run([sys.executable, str(ROOT / "scripts/train-align.py"), "--docs-share", "1.5",
                        "--out", "/nonexistent/d.gguf"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "not a share between 0 and 1" in p.stderr, p.stderr
