"""Which environment variables a `shell` program gets, and which ones a job may set.

A program of a `shell` job never gets the server's whole environment (which holds the model API keys
and the server's own settings): only a minimal base taken from the server, the server's values of the
names the operator lists (`--shell-env`), and the job's `env`. A job may set only a small safe set of
names and those the operator lists; loader, interpreter and tool-config variables (which turn an
allowed program into any command: `BASH_ENV`, `BASH_FUNC_cp%%`, `GIT_CONFIG_*`, `PERL5OPT`, ...) are
refused whatever the operator lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = [
    "BASE_NAMES",
    "SAFE_LISTING",
    "SAFE_NAMES",
    "is_safe_name",
    "never_allowed",
    "program_environment",
    "safe_value_problem",
]

BASE_NAMES = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "TERM")
"""Names a program inherits from the server in any case (with every `LC_*`): what programs need to start."""

SAFE_NAMES = ("LANG", "LANGUAGE", "TZ", "TERM", "NO_COLOR", "COLUMNS", "LINES")
"""Names any job may set (with every `LC_*`), values permitting; the operator's `--shell-env` adds more."""

SAFE_LISTING = ", ".join((*SAFE_NAMES[:2], "LC_*", *SAFE_NAMES[2:]))
"""`SAFE_NAMES` with `LC_*`, as descriptions and errors list them."""

_LOCALE_CATEGORY = re.compile(r"LC_[A-Z]+")

# Each group: why its names are refused, then exact names and name prefixes (compared in upper case:
# some programs read both spellings, curl for one reads http_proxy and HTTPS_PROXY).
_REFUSED: tuple[tuple[str, frozenset[str], tuple[str, ...]], ...] = (
    (
        "shells run code from it (start-up files, exported functions, prompts, options)",
        frozenset({
            "ENV", "SHELLOPTS", "BASHOPTS", "PS1", "PS2", "PS3", "PS4", "PROMPT_COMMAND", "IFS", "CDPATH",
            "GLOBIGNORE", "EXECIGNORE", "FIGNORE", "HISTFILE", "INPUTRC", "ZDOTDIR", "FPATH", "SHELL",
        }),
        ("BASH_", "KSH_", "ZSH_"),
    ),
    (
        "it changes which libraries and data files the loader and the C library load",
        frozenset({
            "GCONV_PATH", "LOCPATH", "NLSPATH", "GLIBC_TUNABLES", "HOSTALIASES", "RES_OPTIONS", "LOCALDOMAIN",
            "TZDIR", "TERMINFO", "TERMINFO_DIRS", "TERMCAP",
        }),
        ("LD_", "DYLD_", "MALLOC_", "GLIBC_", "QT_", "GTK_", "GIO_", "GST_"),
    ),
    (
        "interpreters and language tools load code or options from it",
        frozenset({
            "CLASSPATH", "PHPRC", "PHP_INI_SCAN_DIR", "RUSTC", "RUSTC_WRAPPER", "RUSTFLAGS", "GOFLAGS", "GOENV",
            "GOROOT", "GOPATH", "GOPROXY", "GOTOOLCHAIN", "TK_LIBRARY", "CC", "CXX", "CPP", "LD", "AS", "AR",
            "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "MAKEFLAGS", "MAKEFILES", "MFLAGS", "GNUMAKEFLAGS",
        }),
        (
            "PYTHON", "PERL", "RUBY", "GEM_", "BUNDLE_", "NODE_", "NPM_CONFIG_", "YARN_", "LUA_", "TCL", "JAVA_",
            "_JAVA_", "JDK_", "DOTNET_", "CORECLR_", "PIP_", "UV_", "CARGO_", "RUSTUP_",
        ),
    ),
    (
        "programs read commands, configuration files or plug-ins from it",
        frozenset({
            "BROWSER", "EDITOR", "VISUAL", "PAGER", "MANPAGER", "MANOPT", "SYSTEMD_PAGER", "SYSTEMD_EDITOR",
            "SUDO_ASKPASS", "VIMINIT", "EXINIT", "GVIMINIT", "MYVIMRC", "VIMRUNTIME", "CVS_RSH", "SVN_SSH",
            "HGRCPATH", "HGEDITOR", "HGMERGE", "SSLKEYLOGFILE", "WGETRC",
        }),
        ("GIT_", "SSH_", "LESS", "RSYNC_", "DBUS_", "OPENSSL_", "SSL_CERT_", "CURL_", "XDG_", "MCP_SCHEDULER_"),
    ),
    (
        "it sends the program's network traffic through a host of the job's choice",
        frozenset({"HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "ALL_PROXY", "NO_PROXY", "RSYNC_PROXY"}),
        (),
    ),
    (
        "the server sets it: programs find themselves, their files and their configuration through it",
        frozenset({"PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TMP", "TEMP"}),
        (),
    ),
)

_LOCALE_VALUE = re.compile(r"[A-Za-z0-9_.@:\-]{0,100}")
_TERM_VALUE = re.compile(r"[A-Za-z0-9_.+\-]{0,64}")
_TZ_VALUE = re.compile(r"[A-Za-z0-9_.+\-:,<>/]{0,100}")
_NUMBER_VALUE = re.compile(r"[0-9]{1,6}")


def never_allowed(name: str) -> str | None:
    """Why `name` may never be set for, or passed to, a `shell` program (None: it is not one of those)."""
    upper = name.upper()
    for reason, names, prefixes in _REFUSED:
        if upper in names or upper.startswith(prefixes):
            return reason
    return None


def is_safe_name(name: str) -> bool:
    """True if any job may set `name` (values permitting), whatever the operator allows."""
    return name in SAFE_NAMES or _LOCALE_CATEGORY.fullmatch(name) is not None


def safe_value_problem(name: str, value: str) -> str | None:
    """What is wrong with `value` for a safe-set name (None: nothing); locale and terminal names are not paths."""
    if name in ("LANG", "LANGUAGE") or _LOCALE_CATEGORY.fullmatch(name):
        if not _LOCALE_VALUE.fullmatch(value):
            return "a locale name (letters, digits, '_', '.', '@', ':', '-'; no '/')"
    elif name == "TERM":
        if not _TERM_VALUE.fullmatch(value):
            return "a terminal type (letters, digits, '_', '.', '+', '-')"
    elif name == "TZ":
        if not _TZ_VALUE.fullmatch(value) or ".." in value or value.startswith(("/", ":/")):
            return "a time zone name or rule such as 'Europe/Paris' or 'UTC0' (not a file path)"
    elif name in ("COLUMNS", "LINES") and not _NUMBER_VALUE.fullmatch(value):
        return "a whole number"
    return None


def program_environment(
    server: Mapping[str, str], inherited: Iterable[str], job: Mapping[str, str] | None
) -> dict[str, str]:
    """The environment of a program: the server's base names and `inherited` names, then the job's `env`.

    The names are checked before (`never_allowed`); this only assembles them.
    """
    environment = {name: value for name, value in server.items() if name in BASE_NAMES or name.startswith("LC_")}
    for name in inherited:
        if name in server:
            environment[name] = server[name]
    environment.update(job or {})
    return environment
