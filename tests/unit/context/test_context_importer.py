"""`acd customers import`: CSV and JSON, row-by-row validation, the report and the exit status."""

import io
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from acd.context.directory import CustomerDirectory
from acd.context.importer import ImportFileError, RejectedRow, import_command, import_customers

FAST = 1_000  # PBKDF2 iterations for tests only
DEMO = Path(__file__).resolve().parents[3] / "conf" / "customers.csv"
HEADER = "id,name,phones,tier,language,account_number,pin,account_owner,region,product,order_id,order_status,order_eta"


@pytest.fixture
def directory(tmp_path):
    directory = CustomerDirectory(tmp_path / "customers.db", pin_iterations=FAST)
    yield directory
    directory.close()


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_bad_phone_row_is_named_with_its_reason_and_the_other_rows_are_imported(tmp_path, directory):
    path = write(tmp_path, "customers.csv", "\n".join([
        HEADER,
        "C1,Eleanor Whitfield,+44 20 7946 0018,vip,en,ACC-1,4821,1001,london,broadband,12345,shipped,2026-12-02",
        "C2,Tom Ashworth,0161 496 O321,gold,en,ACC-2,,,north-west,broadband,,,",
        "C3,Lucía Fernández,+34 912 345 678;07700 900456,standard,es,ACC-3,,,london,mobile,777,processing,",
    ]) + "\n")
    report = import_customers(directory, path)
    assert report.imported == 2
    assert report.rejected == [RejectedRow(row=3, reason="phone '0161 496 O321': letters in number")]
    assert directory.find_by_phone("020 7946 0018").context()["first_open_order"] == "12345"
    assert directory.find_by_phone("07700 900456").language == "es"
    assert directory.customer("C2") is None
    out = io.StringIO()
    assert import_command(directory, path, out=out) == 1, "a rejected row is a failure unless allowed"
    assert f"{path}:3: phone '0161 496 O321': letters in number" in out.getvalue().splitlines()
    assert "or pass --allow-rejects" in out.getvalue().splitlines()[-1]
    assert import_command(directory, path, out=io.StringIO(), allow_rejects=True) == 0


@pytest.mark.parametrize("row, reason", [
    (",No Id,020 7946 0018,,,,,,,,,,", "missing id"),
    ("C1,,020 7946 0018,,,,,,,,,,", "missing name"),
    ("C1,Ann,020 7946 0018,,,,123,,,,,,", "PIN must be 4-8 digits"),
    ("C1,Ann,020 7946 0018,,,,123456789,,,,,,", "PIN must be 4-8 digits"),
    ("C1,Ann,020 7946 0018,,,,12a4,,,,,,", "PIN must be 4-8 digits"),
    ("C1,Ann,020 7946 0018,platinum,,,,,,,,,", "tier 'platinum' is not one of standard, silver, gold, vip"),
    ("C1,Ann,020 7946 0018,,English,,,,,,,,", "language 'english' is not a language tag"),
    ("C1,Ann,+44 20,,,,,,,,,,", "phone '+44 20': too few digits"),
    ("C1,Ann,020 7946 0018,,,,,,,,9,lost,", "order status 'lost'"),
    ("C1,Ann,020 7946 0018,,,,,,,,9,shipped,4 July", "order eta '4 July' is not a date (YYYY-MM-DD)"),
    ("C1,Ann,020 7946 0018,,,,,,,,,shipped,", "order without an order id"),
    ("C1,Smith, Ann,020 7946 0018,,,,,,,,,,", "14 fields, the header has 13"),
])
def test_each_kind_of_bad_row_is_rejected_with_its_reason(tmp_path, directory, row, reason):
    path = write(tmp_path, "one.csv", f"{HEADER}\n{row}\n")
    report = import_customers(directory, path)
    assert report.imported == 0
    assert len(report.rejected) == 1 and report.rejected[0].row == 2
    assert reason in report.rejected[0].reason


def test_a_duplicate_account_number_rejects_the_later_row(tmp_path, directory):
    path = write(tmp_path, "dup.csv", "id,name,account_number\nC1,Ann,ACC-1\nC2,Bob,ACC-1\n")
    report = import_customers(directory, path)
    assert report.imported == 1
    assert report.rejected == [RejectedRow(row=3, reason="account number ACC-1 already belongs to customer C1")]


def test_csv_row_numbers_are_file_lines_even_after_blank_lines_and_quoted_line_breaks(tmp_path, directory):
    path = write(tmp_path, "lines.csv", 'id,name,region\n\nC1,"Ann\nWhitfield",london\n\nC2,,london\nC3,"Smith, Ann",x\n')
    report = import_customers(directory, path)
    assert report.rejected == [RejectedRow(row=3, reason="name contains control characters"),
                               RejectedRow(row=6, reason="missing name")]
    assert directory.customer("C3").name == "Smith, Ann"


def test_json_import_with_orders_tickets_and_a_bad_element_named_by_index(tmp_path, directory):
    path = write(tmp_path, "customers.json", json.dumps([
        {"id": "C1", "name": "Eleanor Whitfield", "phones": ["+44 20 7946 0018", "5550100"], "tier": "vip",
         "account_number": "ACC-1", "pin": "4821", "account_owner": "1001",
         "orders": [{"order_id": "12345", "status": "shipped", "eta": "2026-12-02", "total": 249.99},
                    {"order_id": "12390", "status": "delivered"}],
         "tickets": [{"ticket_id": "T1", "status": "open", "subject": "Router keeps rebooting"}]},
        {"id": "C2", "name": "Lucía Fernández", "phones": ["+34 912 345 678"], "language": "es",
         "last_agent": "1002", "last_agent_at": "2026-11-20T10:30:00Z"},
        {"id": "C3", "name": "Bad Pin", "pin": 1234},
        "not an object",
        {"id": "C4", "name": "Typo", "tire": "vip", "email": "typo@example.com"},
        {"id": "C5", "name": "Other", "email": "other@example.com", "orders": [{"order_id": "1", "state": "x"}]},
    ]))
    report = import_customers(directory, path)
    assert report.imported == 3
    assert report.rejected == [
        RejectedRow(row=2, reason="pin must be text, not int"),
        RejectedRow(row=3, reason="not a JSON object"),
        RejectedRow(row=5, reason="unknown field 'state' in orders (known: order_id, status, eta, total)"),
    ]
    assert report.notes == ("warning: ignoring 2 keys the directory has no field for: 'tire', 'email' "
                            "(--map KEY=FIELD imports one, --map KEY=- silences this)",)
    assert directory.customer("C4").tier == "standard"
    eleanor = directory.find_by_phone("5550100")
    assert [o.order_id for o in eleanor.open_orders] == ["12345"] and str(eleanor.open_orders[0].total) == "249.99"
    assert directory.verify_pin("C1", "4821")
    assert [t.ticket_id for t in directory.open_tickets("C1")] == ["T1"]
    lucia = directory.customer("C2")
    at = datetime(2026, 11, 20, 10, 30, tzinfo=timezone.utc).timestamp()
    assert (lucia.last_agent, lucia.last_agent_at) == ("1002", at)


def test_a_last_agent_without_a_time_is_stamped_with_the_import_time(tmp_path, directory):
    path = write(tmp_path, "sticky.csv", "id,name,last_agent\nC1,Ann,1001\n")
    import_customers(directory, path, now=1_790_000_000.0)
    assert directory.customer("C1").last_agent_at == 1_790_000_000.0


def test_an_all_bad_file_imports_nothing_and_says_so_with_a_non_zero_exit(tmp_path, directory):
    path = write(tmp_path, "bad.csv", "id,name,phones\n,Ann,020 7946 0018\nC2,Bob,anonymous\n")
    report = import_customers(directory, path)
    assert (report.imported, report.exit_status) == (0, 1)
    assert report.summary() == f"{path}: nothing imported, all 2 rows rejected"
    out = io.StringIO()
    assert import_command(directory, path, out=out) == 1
    assert out.getvalue().splitlines() == [
        f"{path}: nothing imported, all 2 rows rejected",
        f"{path}:2: missing id",
        f"{path}:3: phone 'anonymous': letters in number",
    ]


def test_a_header_only_file_imports_nothing(tmp_path, directory):
    report = import_customers(directory, write(tmp_path, "empty.csv", "id,name\n"))
    assert report.exit_status == 1 and "the file has no customer rows" in report.summary()


def test_reimporting_updates_customers_rather_than_duplicating_them(tmp_path, directory):
    path = write(tmp_path, "c.csv", "id,name,phones,order_id,order_status\nC1,Ann,020 7946 0018,9,processing\n")
    first = import_customers(directory, path)
    path.write_text("id,name,phones,order_id,order_status\nC1,Ann Whitfield,020 7946 0018,9,shipped\n")
    second = import_customers(directory, path)
    assert (first.created, second.created, second.imported) == (1, 0, 1)
    assert second.summary() == f"{path}: 1 row imported (0 new customers, 1 update), 0 rows rejected"
    assert directory.customer("C1").name == "Ann Whitfield"
    assert directory.order("9").status == "shipped"
    connection = sqlite3.connect(directory.path)
    for table in ("customers", "customer_phones", "orders"):
        assert connection.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,), table


@pytest.mark.parametrize("name, text, reason", [
    ("c.csv", "id,phones\nC1,020 7946 0018\n", "missing column 'name'"),
    ("c.csv", "name,tier\nAnn,vip\n", "missing column 'id'"),
    ("c.csv", "customer id,account id,name\nC1,A1,Ann\n", "columns 'customer id' and 'account id' both read as id"),
    ("c.csv", "id,name\x00\n", "NUL bytes"),
    ("c.csv", "", "empty file"),
    ("c.json", "[{", "not valid JSON"),
    ("c.json", '{"id": "C1"}', "JSON must be a list"),
    ("c.xlsx", "", "unknown file type '.xlsx'"),
])
def test_a_file_that_cannot_be_read_at_all_is_a_file_error(tmp_path, directory, name, text, reason):
    path = write(tmp_path, name, text)
    with pytest.raises(ImportFileError, match=reason):
        import_customers(directory, path)
    out = io.StringIO()
    assert import_command(directory, path, out=out) == 1
    assert out.getvalue().startswith(f"{path}: ")


def test_a_missing_file_is_a_file_error(tmp_path, directory):
    with pytest.raises(ImportFileError, match="no such file"):
        import_customers(directory, tmp_path / "missing.csv")


def test_the_demo_file_imports_cleanly_with_its_personas(directory):
    report = import_customers(directory, DEMO, now=1_790_000_000.0)
    assert report.rejected == [] and report.imported >= 10
    vip = directory.find_by_phone("+44 20 7946 0018")
    assert vip.tier == "vip" and vip.context()["first_open_order"] == "12345"
    assert directory.verify_pin(vip.id, "4821")
    assert directory.find_by_phone("5550101").language == "es"
    assert directory.find_by_phone("5550102").last_agent == "1001"
    assert directory.find_by_phone("5551234") is None, "the e2e suites' default caller stays unknown"
