"""`acd customers import` of real CRM and spreadsheet exports: header aliases and `--map`, unknown columns
ignored with one warning, delimiter and encoding detection, ids made from phones, rejected rows failing the exit."""

import codecs
import io
import shutil
from pathlib import Path

import pytest

from acd.cli import main
from acd.context.directory import CustomerDirectory
from acd.context.import_columns import parse_column_map
from acd.context.import_text import decode_export, detect_delimiter
from acd.context.importer import MAX_LISTED_REJECTS, ImportFileError, RejectedRow, import_command, import_customers

FAST = 1_000  # PBKDF2 iterations for tests only
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def directory(tmp_path):
    directory = CustomerDirectory(tmp_path / "customers.db", pin_iterations=FAST)
    yield directory
    directory.close()


def demo_root(tmp_path: Path, country_code: str) -> Path:
    """A copy of the demo config with its own data/ and another country code (flows and sounds linked)."""
    root = tmp_path / "root"
    shutil.copytree(REPO / "conf", root / "conf")
    for name in ("dialplans", "ivr_flows", "sounds"):
        (root / name).symlink_to(REPO / name)
    main_conf = root / "conf" / "acd.yaml"
    main_conf.write_text(main_conf.read_text().replace('country_code: "44"', f'country_code: "{country_code}"'))
    return root


def test_a_crm_export_with_semicolons_cp1252_and_a_bad_row_imports_the_good_rows_and_exits_1(tmp_path, capsys):
    """The issue's case: `phone;name;email;tier` from a Windows CRM, Italian numbers with their trunk 0."""
    root = demo_root(tmp_path, "39")
    export = tmp_path / "crm.csv"
    export.write_bytes("\r\n".join([
        "phone;name;email;tier",
        "06 1234 5678;Niccolò Rossi;n.rossi@example.it;Gold",
        "02 3661 8300;Zoë Bianchi;z.bianchi@example.it;vip",
        "06 1234 567X;Bad Number;bad@example.it;standard",
        "345 678 901;Ana Pérez;ana@example.it;",
    ]).encode("cp1252") + b"\r\n")
    status = main(["customers", "import", str(export), "--root", str(root), "--map", "phone=phones,email=-"])
    out = capsys.readouterr().out.splitlines()
    assert status == 1
    assert f"{export}:4: phone '06 1234 567X': letters in number" in out
    assert f"{export}: 3 rows imported (3 new customers, 0 updates), 1 row rejected" in out
    assert any(line.startswith(f"{export}: not UTF-8: read as Windows-1252 (cp1252)") for line in out)
    assert "warning" not in "\n".join(out), "email was mapped away with --map email=-"
    directory = CustomerDirectory(root / "data" / "customers.db", default_country_code="39")
    try:
        niccolo = directory.find_by_phone("+39 06 1234 5678")
        assert (niccolo.id, niccolo.name, niccolo.tier) == ("+390612345678", "Niccolò Rossi", "gold")
        assert directory.find_by_phone("0236618300").name == "Zoë Bianchi"
        assert directory.customer("+39345678901").name == "Ana Pérez"
    finally:
        directory.close()
    assert main(["customers", "import", str(export), "--root", str(root), "--allow-rejects"]) == 0
    out = capsys.readouterr().out
    assert "0 new customers, 3 updates" in out, "ids made from phones are stable: a re-import updates"
    assert "warning: ignoring 1 column the directory has no field for: 'email'" in out


def test_header_aliases_phone_columns_merged_and_all_unknown_columns_in_one_warning(tmp_path, directory):
    path = tmp_path / "export.csv"
    path.write_text("Customer ID,First Name,Last Name,Telephone,Mobile,E-mail,Notes,Preferred Language\n"
                    "A-17,Ann,Whitfield,020 7946 0018,07700 900123,ann@example.com,likes tea,en_GB\n",
                    encoding="utf-8")
    report = import_customers(directory, path)
    assert (report.imported, report.rejected) == (1, [])
    assert report.notes == (
        "reading columns 'Customer ID' as id, 'Telephone' as phones, 'Mobile' as phones, "
        "'Preferred Language' as language",
        "warning: ignoring 2 columns the directory has no field for: 'E-mail', 'Notes' "
        "(--map COLUMN=FIELD imports one, --map COLUMN=- silences this)",
    )
    ann = directory.customer("A-17")
    assert (ann.name, ann.phones, ann.language) == ("Ann Whitfield", ("+442079460018", "+447700900123"), "en-GB")


@pytest.mark.parametrize("header, delimiter", [
    ("id,name,phones", ","),
    ("id;name;phones", ";"),
    ("id\tname\tphones", "\t"),
    ("id|name|phones", "|"),
    ('"id";"name, full";"phones"', ";"),   # a delimiter inside quotes does not count
    ("name", ","),                         # one column: nothing to detect
    ("id;name,phones;tier", ";"),          # the most frequent wins
])
def test_the_delimiter_is_the_most_frequent_candidate_in_the_header(header, delimiter):
    assert detect_delimiter(header) == delimiter


def test_a_tab_separated_utf16_file_as_excel_saves_unicode_text_is_read(tmp_path, directory):
    path = tmp_path / "excel.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + "id\tname\tphones\r\nC1\tŁucja Nowak\t020 7946 0018\r\n".encode("utf-16-le"))
    report = import_customers(directory, path)
    assert report.imported == 1 and report.notes == ("tab-separated",)
    assert directory.customer("C1").name == "Łucja Nowak"


@pytest.mark.parametrize("data, encoding, note", [
    ("Lucía".encode("utf-8"), "utf-8", None),
    (codecs.BOM_UTF8 + "Lucía".encode("utf-8"), "utf-8", None),
    ("a\nLucía".encode("cp1252"), "cp1252", "not UTF-8: read as Windows-1252 (cp1252); check the accented text "
                                            "(first on line 2), or save the file as UTF-8 to avoid this guess"),
    (b"Luc\x81a", "latin-1", "not UTF-8: read as ISO-8859-1 (latin-1)"),  # 0x81 is undefined in cp1252
])
def test_the_encoding_is_utf8_else_cp1252_else_latin1_with_a_note(data, encoding, note):
    decoded = decode_export(data)
    assert decoded.encoding == encoding
    assert (decoded.note is None) if note is None else decoded.note.startswith(note)


def test_a_bad_byte_order_mark_or_a_binary_file_is_refused():
    with pytest.raises(ValueError, match="UTF-8 byte-order mark but is not UTF-8"):
        decode_export(codecs.BOM_UTF8 + b"Luc\xeda")
    with pytest.raises(ValueError, match="NUL bytes"):
        decode_export(b"PK\x03\x04\x00\x00")


def test_ids_come_from_the_first_phone_only_when_the_file_has_no_id_column(tmp_path, directory):
    path = tmp_path / "noid.csv"
    path.write_text("name,phone\nAnn,020 7946 0018;07700 900123\nNo Phone,\n", encoding="utf-8")
    report = import_customers(directory, path)
    assert report.rejected == [RejectedRow(row=3, reason="no phone to make the customer's id from "
                                                         "(the file has no id column)")]
    assert directory.find_by_phone("07700 900123").id == "+442079460018"
    with_ids = tmp_path / "ids.csv"
    with_ids.write_text("id,name,phone\n,Ann,020 7946 0018\n", encoding="utf-8")
    assert import_customers(directory, with_ids).rejected == [RejectedRow(row=2, reason="missing id")]


def test_map_renames_columns_and_refuses_what_it_cannot_mean(tmp_path, directory):
    path = tmp_path / "it.csv"
    path.write_text("Codice,Nome,Telefono\nC1,Anna,020 7946 0018\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="missing column 'name'"):
        import_customers(directory, path)
    report = import_customers(directory, path, column_map=parse_column_map(["Codice=id", "nome=name,TELEFONO=phones"]))
    assert report.imported == 1 and directory.find_by_phone("02079460018").name == "Anna"
    with pytest.raises(ImportFileError, match="--map names column 'cognome', which the file does not have"):
        import_customers(directory, path, column_map=parse_column_map(["cognome=last_name"]))


@pytest.mark.parametrize("text, reason", [
    ("phone", "write COLUMN=FIELD"),
    ("phone=telephone", "'telephone' is not a directory field"),
    ("=phones", "write COLUMN=FIELD"),
    ("phone=phones,Phone=name", "names column 'Phone' twice"),
])
def test_a_bad_map_is_refused_naming_the_pair(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_column_map([text])


def test_a_bad_map_on_the_command_line_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["customers", "import", str(tmp_path / "x.csv"), "--map", "phone=telephone"])
    assert exit_info.value.code == 2
    assert "'telephone' is not a directory field" in capsys.readouterr().err


def test_many_rejected_rows_are_listed_up_to_a_cap_then_by_line_number(tmp_path, directory):
    rows = [f"C{n},Name {n},anonymous" for n in range(MAX_LISTED_REJECTS + 5)]
    path = tmp_path / "bad.csv"
    path.write_text("id,name,phones\nOK,Fine,020 7946 0018\n" + "\n".join(rows) + "\n", encoding="utf-8")
    out = io.StringIO()
    assert import_command(directory, path, out=out) == 1
    lines = out.getvalue().splitlines()
    assert lines[0] == f"{path}: 1 row imported (1 new customer, 0 updates), {MAX_LISTED_REJECTS + 5} rows rejected"
    assert lines[MAX_LISTED_REJECTS] == f"{path}:{MAX_LISTED_REJECTS + 2}: phone 'anonymous': letters in number"
    first_unlisted = MAX_LISTED_REJECTS + 3
    assert lines[MAX_LISTED_REJECTS + 1] == (f"{path}: 5 more rejected rows, at "
                                             + ", ".join(str(n) for n in range(first_unlisted, first_unlisted + 5)))
    assert len(lines) == MAX_LISTED_REJECTS + 3
