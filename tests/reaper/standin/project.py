"""The in-memory REAPER: projects, tracks, items, takes, sources, pointers, logs.

Objects get fake C addresses that are never reused, so a deleted object's pointer string stays
stale forever (REAPER_API.md 1.3). Everything a test may want to assert on is a plain list on
:class:`Reaper`: ``undo_log``, ``action_log``, ``render_log``, ``blocked_dialogs``, ``dialog_log``,
``console``.
"""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass, field

import soundfile as sf

from .fx import FXInstance

TRACK_DEFAULTS = {
    "B_MUTE": 0.0, "B_PHASE": 0.0, "I_SOLO": 0.0, "I_FXEN": 1.0, "I_RECARM": 0.0, "I_RECINPUT": 0.0,
    "I_RECMODE": 0.0, "I_RECMON": 0.0, "D_VOL": 1.0, "D_PAN": 0.0, "D_WIDTH": 1.0,
    "I_FOLDERDEPTH": 0.0, "I_FOLDERCOMPACT": 0.0, "B_MAINSEND": 1.0, "I_NCHAN": 2.0,
    "I_CUSTOMCOLOR": 0.0, "B_SHOWINMIXER": 1.0, "B_SHOWINTCP": 1.0, "I_PERFFLAGS": 0.0,
}
ITEM_DEFAULTS = {
    "D_POSITION": 0.0, "D_LENGTH": 0.0, "D_VOL": 1.0, "B_MUTE": 0.0, "B_LOOPSRC": 1.0,
    "B_UISEL": 0.0, "D_SNAPOFFSET": 0.0, "D_FADEINLEN": 0.0, "D_FADEOUTLEN": 0.0,
    "I_CUSTOMCOLOR": 0.0, "C_LOCK": 0.0,
}
TAKE_DEFAULTS = {
    "D_STARTOFFS": 0.0, "D_VOL": 1.0, "D_PAN": 0.0, "D_PLAYRATE": 1.0, "D_PITCH": 0.0,
    "B_PPITCH": 0.0, "I_CHANMODE": 0.0,
}
RENDER_NUM_DEFAULTS = {
    "RENDER_SETTINGS": 0.0, "RENDER_BOUNDSFLAG": 1.0, "RENDER_STARTPOS": 0.0, "RENDER_ENDPOS": 0.0,
    "RENDER_SRATE": 0.0, "RENDER_CHANNELS": 2.0, "RENDER_TAILFLAG": 0.0, "RENDER_TAILMS": 1000.0,
    "RENDER_ADDTOPROJ": 0.0, "RENDER_DITHER": 0.0, "RENDER_NORMALIZE": 0.0,
    "RENDER_NORMALIZE_TARGET": 0.5, "RENDER_BRICKWALL": 1.0, "RENDER_FADEIN": 0.0,
    "RENDER_FADEOUT": 0.0, "RENDER_FADEINSHAPE": 0.0, "RENDER_FADEOUTSHAPE": 0.0,
    "RENDER_PADSTART": 0.0, "RENDER_PADEND": 0.0, "RENDER_TRIMSTART": 0.0, "RENDER_TRIMEND": 0.0,
    "RENDER_DELAY": 0.0,
}
RENDER_STR_DEFAULTS = {
    "RENDER_FILE": "", "RENDER_PATTERN": "", "RENDER_FORMAT": "ZXZhdxgAAA==", "RENDER_FORMAT2": "",
    "RENDER_METADATA": "", "RENDER_EXTRAFILEDIR": "",
}

_addresses = itertools.count(0x0000_7F3A_C0DE_1000, 0x40)  # hex letters: lowercase != uppercase


class Obj:
    """Anything a C pointer can point at."""

    ptr_type = "void*"

    def __post_init__(self) -> None:
        self.addr = next(_addresses)


@dataclass(eq=False)
class Source(Obj):
    filename: str
    length_s: float
    sample_rate: int
    channels: int
    ptr_type = "PCM_source*"

    @classmethod
    def from_file(cls, path: str) -> "Source | None":
        try:
            info = sf.info(path)
        except Exception:  # missing or unreadable: REAPER gives no usable source [?]
            return None
        return cls(os.path.abspath(path), info.frames / info.samplerate, info.samplerate, info.channels)


@dataclass(eq=False)
class Take(Obj):
    item: "Item"
    source: Source | None = None
    name: str = ""
    attrs: dict = field(default_factory=lambda: dict(TAKE_DEFAULTS))
    guid: str = field(default_factory=lambda: "{" + str(uuid.uuid4()).upper() + "}")
    ptr_type = "MediaItem_Take*"


@dataclass(eq=False)
class Item(Obj):
    track: "Track"
    takes: list = field(default_factory=list)
    attrs: dict = field(default_factory=lambda: dict(ITEM_DEFAULTS))
    active: int = 0
    guid: str = field(default_factory=lambda: "{" + str(uuid.uuid4()).upper() + "}")
    ptr_type = "MediaItem*"

    @property
    def active_take(self) -> Take | None:
        return self.takes[self.active] if 0 <= self.active < len(self.takes) else None


@dataclass(eq=False)
class Track(Obj):
    project: "Project"
    is_master: bool = False
    name: str = ""
    attrs: dict = field(default_factory=lambda: dict(TRACK_DEFAULTS))
    items: list = field(default_factory=list)
    fx: list = field(default_factory=list)        # list[FXInstance]
    rec_fx: list = field(default_factory=list)
    ext: dict = field(default_factory=dict)       # P_EXT:*
    guid: str = field(default_factory=lambda: "{" + str(uuid.uuid4()).upper() + "}")
    ptr_type = "MediaTrack*"

    @property
    def selected(self) -> bool:
        return bool(self.attrs.get("I_SELECTED", 0.0))

    @selected.setter
    def selected(self, on: bool) -> None:
        self.attrs["I_SELECTED"] = 1.0 if on else 0.0

    @property
    def index(self) -> int:
        """0-based; -1 for the master."""
        return -1 if self.is_master else self.project.tracks.index(self)

    def chain(self, fx_index: int) -> tuple[list, int]:
        """(chain list, index in it) for a TrackFX index (+0x1000000 = record/monitor FX)."""
        if fx_index >= 0x1000000:
            return self.rec_fx, fx_index - 0x1000000
        return self.fx, fx_index

    def fx_at(self, fx_index: int) -> FXInstance | None:
        chain, i = self.chain(fx_index)
        return chain[i] if 0 <= i < len(chain) else None


@dataclass(eq=False)
class Project(Obj):
    app: "Reaper"
    folder: str                 # where the .rpp lives (or would live)
    rpp_name: str = ""          # "" = unsaved
    media_subdir: str = "Media"
    tracks: list = field(default_factory=list)
    master: Track | None = None
    time_sel: tuple = (0.0, 0.0)
    loop: tuple = (0.0, 0.0)
    cursor: float = 0.0
    srate: float = 44100.0
    srate_use: float = 0.0
    render_num: dict = field(default_factory=lambda: dict(RENDER_NUM_DEFAULTS))
    render_str: dict = field(default_factory=lambda: dict(RENDER_STR_DEFAULTS))
    info_str: dict = field(default_factory=lambda: {"PROJECT_TITLE": "", "PROJECT_AUTHOR": "",
                                                   "RECORD_PATH": ""})
    ext: dict = field(default_factory=dict)
    dirty: bool = False
    last_render_stats: str = ""
    ptr_type = "ReaProject*"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.master = Track(self, is_master=True)
        self.app.register(self.master)

    @property
    def rpp_path(self) -> str:
        return os.path.join(self.folder, self.rpp_name) if self.rpp_name else ""

    @property
    def saved(self) -> bool:
        return bool(self.rpp_name)

    @property
    def name_stem(self) -> str:
        return os.path.splitext(self.rpp_name)[0] if self.rpp_name else "untitled"

    @property
    def record_path(self) -> str:
        """GetProjectPath: the recording (media) folder. Unsaved projects use the app default."""
        custom = self.info_str.get("RECORD_PATH", "")
        if custom:
            return custom if os.path.isabs(custom) else os.path.join(self.folder, custom)
        if not self.saved:
            return self.app.default_record_path
        return os.path.join(self.folder, self.media_subdir) if self.media_subdir else self.folder

    @property
    def sample_rate(self) -> int:
        return int(self.srate) if self.srate_use else int(self.app.device_srate)

    def all_tracks(self) -> list:
        return [self.master] + self.tracks

    def length(self) -> float:
        end = 0.0
        for t in self.tracks:
            for it in t.items:
                end = max(end, it.attrs["D_POSITION"] + it.attrs["D_LENGTH"])
        return end

    def owns(self, obj: Obj) -> bool:
        if isinstance(obj, Track):
            return obj.project is self and (obj.is_master or obj in self.tracks)
        if isinstance(obj, Item):
            return self.owns(obj.track) and obj in obj.track.items
        if isinstance(obj, Take):
            return self.owns(obj.item) and obj in obj.item.takes
        return False


@dataclass
class UserInputsAnswer:
    values: list | None      # None = the user cancels


class Reaper:
    """Application state: the registry of live objects, open projects and all logs."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.resource_path = os.path.join(self.root, "resource")
        self.default_record_path = os.path.join(self.root, "REAPER Media")
        for d in (self.resource_path, self.default_record_path):
            os.makedirs(d, exist_ok=True)
        self.objects: dict[int, Obj] = {}
        self.app_version = "7.22/linux-x86_64"
        self.device_srate = 48000.0
        self.device_open = True
        self.projects: list[Project] = []
        self.current = 0
        self.ext_state: dict[tuple[str, str], str] = {}
        self.ext_persist: set[tuple[str, str]] = set()
        self.console = ""
        self.console_opened = False
        self.undo_log: list[dict] = []
        self.undo_depth = 0
        self.action_log: list[dict] = []
        self.render_log: list[dict] = []
        self.blocked_dialogs: list[dict] = []
        self.dialog_log: list[dict] = []
        self.mb_answers: list[int] = []
        self.input_answers: list[UserInputsAnswer] = []
        self.ui_refresh_count = 0
        self.ui_refresh_log: list[int] = []
        self.last_touched: Track | None = None
        self.unknown_fx: list[str] = []
        self.named_commands: dict[str, int] = {}
        # what a user's REAPER may hold that ReaMaster must cope with
        self.reaeq_default_types: list[int] | None = None  # a user default preset for ReaEQ (band types)
        self.default_track_fx: list[str] = []               # FX in the default track template
        self.sws = False                                     # SWS installed (its API is in sws_python64.py)
        self.tab_switch: tuple[int, int] | None = None      # (tick, project index): the user switches tabs
        self.new_project("untitled_project", saved=False)

    # --- registry -------------------------------------------------------------------------------------
    def register(self, obj: Obj) -> Obj:
        self.objects[obj.addr] = obj
        return obj

    def unregister(self, obj: Obj) -> None:
        self.objects.pop(obj.addr, None)
        if isinstance(obj, Track):
            for it in obj.items:
                self.unregister(it)
        elif isinstance(obj, Item):
            for tk in obj.takes:
                self.unregister(tk)
        elif isinstance(obj, Project):
            for t in obj.all_tracks():
                self.unregister(t)

    def lookup(self, addr: int, ctype: str):
        obj = self.objects.get(addr)
        if obj is None:
            return None
        return obj if ctype in ("void*", obj.ptr_type) else None

    # --- projects -------------------------------------------------------------------------------------
    @property
    def project(self) -> Project:
        return self.projects[self.current]

    def new_project(self, name: str, *, saved: bool = True, folder: str | None = None) -> Project:
        folder = folder or os.path.join(self.root, "projects", name)
        os.makedirs(folder, exist_ok=True)
        p = Project(self, folder, rpp_name=(name + ".rpp") if saved else "")
        self.register(p)
        self.projects.append(p)
        self.current = len(self.projects) - 1
        if saved:
            self.save_project(p)
        return p

    def save_as(self, p: Project, name: str, folder: str | None = None) -> Project:
        """What the user does in File > Save As: the project gets a folder and an .rpp name."""
        p.folder = folder or os.path.join(self.root, "projects", name)
        os.makedirs(p.folder, exist_ok=True)
        p.rpp_name = name + ".rpp"
        self.save_project(p)
        return p

    def save_project(self, p: Project) -> bool:
        if not p.saved:
            self.blocked_dialogs.append({"kind": "save_as", "project": p.folder})
            return False
        with open(p.rpp_path, "w", encoding="utf-8") as f:  # a marker, not a real RPP
            f.write("<REAPER_PROJECT 0.1 \"%s\"\n>\n" % self.app_version)
        os.makedirs(p.record_path, exist_ok=True)
        p.dirty = False
        return True

    def project_or_current(self, proj: Project | None) -> Project:
        return proj if proj is not None else self.project

    # --- helpers used by several API functions ----------------------------------------------------------
    def new_fx(self, spec) -> FXInstance:
        """A new FX instance as REAPER makes it: ReaEQ follows the user's default preset."""
        if spec.file_stem == "reaeq" and self.reaeq_default_types:
            from .fx import eq_bands_for_types
            return FXInstance(spec, eq_layout=eq_bands_for_types(self.reaeq_default_types))
        return FXInstance(spec)

    def insert_track(self, proj: Project, idx: int) -> Track:
        idx = min(max(int(idx), 0), len(proj.tracks))
        t = self.register(Track(proj))
        proj.tracks.insert(idx, t)
        proj.dirty = True
        return t

    def delete_track(self, t: Track) -> None:
        if t.is_master or t not in t.project.tracks:
            return
        t.project.tracks.remove(t)
        if self.last_touched is t:
            self.last_touched = None
        self.unregister(t)
        t.project.dirty = True

    def add_item(self, t: Track) -> Item:
        it = self.register(Item(t))
        t.items.append(it)
        t.project.dirty = True
        return it

    def add_take(self, it: Item) -> Take:
        tk = self.register(Take(it))
        it.takes.append(tk)
        return tk

    def console_write(self, text: str) -> None:
        self.console += text
