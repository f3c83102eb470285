"""Connection: where the data goes. Fields or a whole URL; Test says what the server is and allows."""

from __future__ import annotations

from typing import Iterable
from urllib.parse import unquote

from textual import on, work
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static

from screens.messages import TargetTested
from screens.widgets import URL_PASSWORD, StepScreen, UrlInput, Wrapped, esc
from wizard import commands
from wizard.commands import DbUrl, parse_url
from wizard.errors import WizardError
from wizard.secrets import mask

FIELDS = ("host", "port", "database", "user", "password")
TYPED = ("host", "port", "database", "user", "sslrootcert", "schema")  # the fields a URL is built from, as typed
# What an empty field means, by the target's kind (is_mysql): on MySQL a schema is the database itself.
PLACEHOLDERS = {False: {"port": "5432", "schema": "public (PostgreSQL: a schema of the target's own)"},
                True: {"port": "3306", "schema": "none on MySQL: its schema is the Database above"}}
class ConnectionScreen(StepScreen):
    STEP = "connection"
    STEP_TITLE = "the target database"
    # Plain Ctrl+letters: the fields take every printable key.
    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("ctrl+t", "test", "Test", tooltip="Connect and check the target", id="test"),
        Binding("ctrl+n", "next", "Next", tooltip="Pre-flight checks", id="next"),
    ]

    def body(self) -> Iterable[Widget]:
        with VerticalScroll(id="form"):
            yield Static("A whole URL, or the fields below it: each follows the other.\n"
                         "Tab moves between fields; Enter or Ctrl+T tests the connection.", classes="hint")
            with Grid(id="fields"):
                yield Label("URL")
                yield UrlInput(placeholder="postgresql://user@host:5432/db or mysql://user@host:3306/db",
                               id="url")
                for name in FIELDS:
                    yield Label(name.capitalize())
                    yield Input(
                        placeholder={"host": "127.0.0.1", **PLACEHOLDERS[False]}.get(name, ""), id=name,
                        password=name == "password", type="integer" if name == "port" else "text",
                    )
                yield Label("SSL mode")
                with Horizontal(id="tls"):
                    yield Select([(m, m) for m in commands.SSL_MODES], prompt="(driver default)", id="sslmode")
                    yield Label("CA file")
                    yield Input(placeholder="root.crt: verify-ca, verify-full", id="sslrootcert")
                yield Label("Schema")
                yield Input(placeholder=PLACEHOLDERS[False]["schema"], id="schema")
            yield Wrapped("", id="result")

    def on_mount(self) -> None:
        super().on_mount()
        self._fields_error: WizardError | None = None
        text = self.session.target_text or self._target_of_resumed_run()
        if self.session.target is not None:
            text = self.session.target.sync_str()
        if text:
            self._prefill(text)
        if self.session.resume_run:
            self._say(f"To resume run {esc(self.session.resume_run)}, give the target it was moving to.")
        self.query_one("#url", Input).focus()
        self._tested: DbUrl | None = None

    def _target_of_resumed_run(self) -> str | None:
        if not self.session.resume_run:
            return None
        return commands.resumable_target(self.session.state_dir, self.session.resume_run)

    def _prefill(self, text: str) -> None:
        """The URL without its password, which goes to the masked field: never shown on screen."""
        try:
            url = parse_url(text, "target")
        except WizardError as exc:
            self._say(f"[red]{esc(mask(exc.message))}[/]")
            return
        self.query_one("#url", Input).value = url.without_password()
        self.query_one("#password", Input).value = url.password()
        self._fill_fields(url)

    def _fill_fields(self, url: DbUrl) -> None:
        """The fields say what the URL says (its password stays in the Password field alone)."""
        u = url.url
        values = {"host": u.host or "", "port": str(u.port or ""), "database": u.database or "",
                  "user": u.username or "", "sslrootcert": url.tls().get("sslrootcert", ""),
                  "schema": "" if url.is_mysql else commands.schema_of(url) or ""}
        for name, value in values.items():
            field = self.query_one(f"#{name}", Input)
            if field.value != value:
                field.value = value
        sslmode = u.query.get("sslmode")
        select = self.query_one("#sslmode", Select)
        if sslmode in commands.SSL_MODES and select.value != sslmode:
            select.value = sslmode
        elif sslmode not in commands.SSL_MODES and not select.is_blank():
            select.clear()
        for name in ("sslmode", "sslrootcert", "schema"):  # libpq's and PostgreSQL's alone
            self.query_one(f"#{name}").disabled = url.is_mysql
        for name, placeholder in PLACEHOLDERS[url.is_mysql].items():
            self.query_one(f"#{name}", Input).placeholder = placeholder

    def _url_from_fields(self) -> None:
        """A field edited by hand: the URL follows it, so the two never say different things."""
        try:
            url = self._from_fields()
        except WizardError as exc:
            # The URL still says what the fields said before: Test must say this, not connect to that.
            self._fields_error = exc
            return
        self._fields_error = None
        field = self.query_one("#url", Input)
        if field.value != url.without_password():
            field.value = url.without_password()

    def _say(self, text: str) -> None:
        result = self.query_one("#result", Static)
        result.update(text)
        result.call_after_refresh(result.scroll_visible)

    def _target(self) -> DbUrl:
        """The URL field when filled, else one built from the fields; a field that makes no URL says why."""
        if self._fields_error is not None:
            raise self._fields_error
        url = self.query_one("#url", Input).value.strip()
        password = self.query_one("#password", Input).value  # taken as typed: spaces may be part of it
        if url:
            target = parse_url(url, "target")
            if password and not target.password():
                target = target.with_password(password)
            schema = self.query_one("#schema", Input).value.strip()
            if not target.is_mysql and schema != (commands.schema_of(target) or ""):
                # The Schema field has the last word; a name the URL could not take is said here, in one line.
                target = commands.in_schema(target, schema)
            return target
        return self._from_fields()

    def _from_fields(self) -> DbUrl:
        """The fields over the URL shown (its kind, a client certificate, other options kept)."""
        try:
            base = parse_url(self.query_one("#url", Input).value, "target")
        except WizardError:
            base = None
        values = {name: self.query_one(f"#{name}", Input).value.strip() for name in TYPED}
        select = self.query_one("#sslmode", Select)
        # The port as typed: the integer field takes a lone '-', which the URL then says is no port.
        return commands.form_url(base, values["host"], values["port"] or None,
                                 values["database"], values["user"], self.query_one("#password", Input).value,
                                 None if select.is_blank() else str(select.value), values["sslrootcert"] or None,
                                 values["schema"])

    @on(Input.Submitted)
    def action_test(self) -> None:
        self._tested = None
        self.refresh_bindings()
        try:
            target = self._target()
        except WizardError as exc:
            self._say(f"[red]{esc(mask(exc.message))}[/]")
            return
        self._say(f"Connecting to {esc(target.masked())}...")
        self.test_target(target)

    @on(Input.Changed, "#url")
    def _url_edited(self, event: Input.Changed) -> None:
        """A password typed or pasted into the URL goes to the masked Password field, out of the URL."""
        field = event.input
        value, cursor = field.value, field.cursor_position  # now: keys may have come after the event's
        m = URL_PASSWORD.match(value)
        if m is None or not m["password"]:
            if field.has_focus:  # typed or pasted: the fields follow (set here from them, they are equal)
                try:
                    self._fill_fields(parse_url(value, "target"))
                    self._fields_error = None
                except WizardError:
                    pass  # not a URL yet
            return
        start, end = m.start("password") - 1, m.end("password")  # with its ':'
        self.query_one("#password", Input).value = unquote(m["password"])
        field.value = value[:start] + value[end:]
        field.cursor_position = cursor - (end - start) if cursor >= end else min(cursor, start)

    @on(Input.Changed, "#host, #port, #database, #user, #sslrootcert, #schema")
    @on(Select.Changed, "#sslmode")
    def _field_edited(self, event: Input.Changed | Select.Changed) -> None:
        if event.control.has_focus:
            self._url_from_fields()

    @on(Input.Changed)
    def _edited(self) -> None:
        if self._tested is not None:
            self._tested = None
            self.refresh_bindings()

    @work(exclusive=True, exit_on_error=False, group="test", description="test the target")
    async def test_target(self, target: DbUrl) -> None:
        try:
            source = parse_url(self.session.source_text, "source") if self.session.source_text else None
            self.post_message(TargetTested((target, await commands.check_target(target, source))))
        except WizardError as exc:
            self.post_message(TargetTested(error=mask(exc.message)))

    @on(TargetTested)
    def tested(self, message: TargetTested) -> None:
        if message.error:
            self.title = self.session.title()  # no server said what it is: where the journey went before
            self._say(f"[red]{esc(message.error)}[/]")
            return
        target, info = message.value
        self.title = self.session.title(target)  # the header names the server the check reached (README, The TUI)
        lines = [f"[b]{esc(target.masked())}[/]"] + [esc(mask(line)) for line in info.lines()]
        resuming = self.session.resume_run
        if resuming and info.run_id == resuming:
            self._tested = target
            lines.append(f"[green]Ready.[/] It holds the partial copy of run {esc(resuming)}: Ctrl+N resumes it.")
        elif info.ok:
            self._tested = target
            lines.append("[green]Ready.[/] Ctrl+N: pre-flight checks.")
        else:
            lines.append(f"[red]{esc(commands.in_keys(mask(info.problem)))}[/]")
        self._say("\n".join(lines))
        self.refresh_bindings()

    def can_go_next(self) -> bool:
        return getattr(self, "_tested", None) is not None

    def action_next(self) -> None:
        if self._tested is None:
            return
        if self.session.target != self._tested:
            self.session.preflight = None  # checked against another target
        self.session.target = self._tested
        if self.session.resume_run:
            self.wizard.start_move(resume=True)
            self.wizard.go("copy")
        else:
            self.wizard.go("preflight")
