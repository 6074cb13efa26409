"""The archive guard: a .zip export or an .xlsx workbook is inspected before anything is
unpacked or parsed. An export is a handful of tables, so many entries, a huge unpacked
size, an extreme compression ratio, a name pointing outside the archive or an XML
DOCTYPE/ENTITY declaration mean a malicious or broken file, not a clinic's data."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path, PurePosixPath

from ..scratch import create_private
from .common import DatasetError

# Limits a clinic may change. A 5-million-row export unpacks to about 200 MB of CSV;
# zip bombs aim at gigabytes to terabytes.
MAX_ENTRIES = 1_000                      # files inside a .zip or .xlsx
MAX_UNCOMPRESSED_BYTES = 1024 ** 3       # a .zip export, unpacked
MAX_WORKBOOK_BYTES = 200 * 1024 ** 2     # an .xlsx, unpacked (openpyxl holds strings in memory)
MAX_RATIO = 100                          # unpacked : packed, for an entry ...
RATIO_MIN_BYTES = 1024 ** 2              # ... larger than this
XML_PROLOG_BYTES = 16 * 1024             # where a DOCTYPE or ENTITY would have to appear
# Parts of a workbook openpyxl never parses as XML.
_BINARY_PARTS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".emf", ".wmf",
                 ".svg", ".bin")


def _parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    return PurePosixPath(info.filename.replace("\\", "/")).parts


def _open_archive(path: Path, shown: str, max_bytes: int, workbook: bool) -> zipfile.ZipFile:
    """Open a zip container after checking it is small and plain enough to unpack."""
    try:
        archive = zipfile.ZipFile(path)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        if workbook:
            raise DatasetError(f"{shown} is not a valid .xlsx workbook (it may be damaged, "
                               "password-protected or an old .xls file); open it in Excel, "
                               "save it as .xlsx and import again.") from None
        raise DatasetError(f"{shown} is not a valid zip file (it may be damaged or "
                           "incomplete); create it again and import again.") from None
    try:
        reason = _archive_risk(infos, max_bytes)
        if reason:
            raise DatasetError(f"{shown} looks unsafe ({reason}) and was not opened. Export "
                               "the data again, or ask your administrator about the limit.")
        for info in infos:
            name = info.filename.replace("\\", "/")
            if (name.startswith("/") or re.match(r"^[A-Za-z]:", name)
                    or ".." in PurePosixPath(name).parts):
                raise DatasetError(f"{shown} was not opened because a file inside it points "
                                   "outside the archive (a name with '..' or an absolute "
                                   "path); create the zip again from the export folder.")
    except BaseException:
        archive.close()
        raise
    return archive


def _archive_risk(infos: list[zipfile.ZipInfo], max_bytes: int) -> str | None:
    if len(infos) > MAX_ENTRIES:
        return f"it holds more than {MAX_ENTRIES:,} files, like a zip bomb"
    if sum(i.file_size for i in infos) > max_bytes:
        return f"it would unpack to more than {max_bytes // 1024 ** 2:,} MB, like a zip bomb"
    for info in infos:
        packed = max(info.compress_size, 1)
        if info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * packed:
            return f"a file inside is compressed more than {MAX_RATIO} to 1, like a zip bomb"
    return None


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, label: str) -> None:
    written = 0
    try:
        with archive.open(info) as src, create_private(target) as out:
            while chunk := src.read(1024 ** 2):
                written += len(chunk)
                if written > info.file_size:  # the directory lied about the size
                    raise DatasetError(f"{label} looks unsafe (it is larger than the zip "
                                       "says) and was not opened.")
                out.write(chunk)
    except DatasetError:
        raise
    except Exception:  # zlib, bz2 and lzma each raise their own error on damaged data
        raise DatasetError(f"{label} could not be unpacked (the zip is damaged or uses an "
                           "unusual compression); create the zip again and import "
                           "again.") from None


def _refuse_xml_declarations(archive: zipfile.ZipFile, shown: str) -> None:
    """Excel never writes a DOCTYPE; one in a workbook is an entity-expansion attack."""
    unsafe = DatasetError(f"{shown} looks unsafe (it declares XML entities or a DOCTYPE, "
                          "which Excel never writes) and was not opened. Open it in Excel, "
                          "save it as a new .xlsx and import again.")
    for info in archive.infolist():
        if info.is_dir() or info.filename.lower().endswith(_BINARY_PARTS):
            continue
        try:
            with archive.open(info) as part:
                head = part.read(XML_PROLOG_BYTES)
        except Exception:
            raise DatasetError(f"{shown} is not a valid .xlsx workbook (it may be damaged); "
                               "open it in Excel, save it again and import again.") from None
        # Dropping NUL bytes makes UTF-16 XML searchable as ASCII.
        text = head.replace(b"\x00", b"").upper()
        if b"<!DOCTYPE" in text or b"<!ENTITY" in text:
            raise unsafe
        prolog = re.sub(rb"<!--.*?-->", b"", text, flags=re.S)
        if (prolog.lstrip(b"\xef\xbb\xbf\xff\xfe \t\r\n").startswith(b"<")
                and not re.search(rb"<[A-Z_]", prolog) and info.file_size > len(head)):
            raise unsafe  # a prolog this long can hide a declaration past the window
