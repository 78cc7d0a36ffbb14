"""Helpers for the hardening tests: small order tables, a minimal .xlsx writer, the CLI run
in-process, and fingerprints of directories (to prove that nothing else was written)."""

from __future__ import annotations

import hashlib
import os
import sys
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

HEADER = "customer_id,order_date,amount"


def order_rows(n: int = 60, customers: int = 20, sep: str = ",") -> list[str]:
    """Generic order lines: customer C000..C0nn, ISO dates, amounts with two decimals."""
    rows = []
    for i in range(n):
        c = i % customers
        rows.append(sep.join([f"C{c:03d}", f"2024-0{1 + i % 9}-1{i % 9}", f"{(c + 1) * 3.5 + i % 7:.2f}"]))
    return rows


def write_csv(path: Path, header: str, rows: list[str], encoding: str = "utf-8", end: str = "\n") -> Path:
    path.write_bytes((header + "\n" + "\n".join(rows) + end).encode(encoding))
    return path


def write_xlsx(path: Path, sheets: dict[str, list[list]]) -> Path:
    """A minimal but valid .xlsx workbook (inline strings and numbers), one sheet per entry."""
    def cell(value, ref):
        if isinstance(value, (int, float)):
            return f'<c r="{ref}"><v>{value}</v></c>'
        return f'<c r="{ref}" t="inlineStr"><is><t>{escape(str(value))}</t></is></c>'

    def column(i):
        name = ""
        i += 1
        while i:
            i, r = divmod(i - 1, 26)
            name = chr(65 + r) + name
        return name

    names = list(sheets)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0" encoding="UTF-8"?>'
                   '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                   '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                   '<Default Extension="xml" ContentType="application/xml"/>'
                   '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
                   'spreadsheetml.sheet.main+xml"/>'
                   + "".join(f'<Override PartName="/xl/worksheets/sheet{i + 1}.xml" ContentType="application/'
                             'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                             for i in range(len(names)))
                   + "</Types>")
        z.writestr("_rels/.rels",
                   '<?xml version="1.0" encoding="UTF-8"?>'
                   '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                   'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml",
                   '<?xml version="1.0" encoding="UTF-8"?>'
                   '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                   'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
                   + "".join(f'<sheet name="{escape(n)}" sheetId="{i + 1}" r:id="rId{i + 1}"/>'
                             for i, n in enumerate(names))
                   + "</sheets></workbook>")
        z.writestr("xl/_rels/workbook.xml.rels",
                   '<?xml version="1.0" encoding="UTF-8"?>'
                   '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   + "".join(f'<Relationship Id="rId{i + 1}" Type="http://schemas.openxmlformats.org/'
                             f'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{i + 1}.xml"/>'
                             for i in range(len(names)))
                   + "</Relationships>")
        for i, name in enumerate(names):
            rows = "".join(
                f'<row r="{r + 1}">' + "".join(cell(v, f"{column(c)}{r + 1}") for c, v in enumerate(values)) + "</row>"
                for r, values in enumerate(sheets[name])
            )
            z.writestr(f"xl/worksheets/sheet{i + 1}.xml",
                       '<?xml version="1.0" encoding="UTF-8"?>'
                       '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                       f"<sheetData>{rows}</sheetData></worksheet>")
    return path


def run_cli(args: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    """`custseg ARGS` in this process: (exit code, stdout, stderr)."""
    from custseg.cli import entry

    monkeypatch.setattr(sys, "argv", ["custseg", *map(str, args)])
    try:
        entry()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fingerprint(directory: Path) -> dict[str, tuple]:
    """Every entry under `directory`: relative path -> (kind, size, mtime_ns, sha256 of files)."""
    out: dict[str, tuple] = {}
    directory = Path(directory)
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            p = Path(root) / name
            out[str(p.relative_to(directory))] = ("dir",)
        for name in files:
            p = Path(root) / name
            st = p.lstat()
            out[str(p.relative_to(directory))] = ("file", st.st_size, st.st_mtime_ns, file_digest(p))
    return out
