"""The compositor: blends rendered frames and moves the picture with the music between renders.

Renders arrive at any rate (one per 10 s on a CPU, 100/s on a GPU); the display needs 60 fps. So
the compositor crossfades between the two newest frames and applies cheap, beat-reactive effects on
every display frame:

- zoom pulse on beats (`beat_zoom`; `live.screen.pulse.beat_pulse`: downbeats strongest, off-beat
  onsets smaller; give `compose` features re-timed to when the frame is seen, `PulseClock.at`),
- brightness from the low band (`band_brightness`),
- a hue tint that swings with the high/mid balance (`band_hue`),
- a feedback warp: the previous output, slightly zoomed and rotated, shows through (`warp`),
- stems (a preset's `[stems]`, `engine.audio.stems.StemRouting`): the routed stem's level adds to
  the zoom (`zoom`), the brightness (`flash`), the warp (`warp`) and tints towards the hue of the
  harmony (`colour`), each also scaled by its sensitivity knob above,
- a soft cut between presets: the picture at the cut fades out over the new look (`begin_cut`).

Each effect is scaled by its sensitivity knob (0 = off, 1 = default, 2 = strong). Everything is
pygame Surface work (smoothscale, rotozoom, BLEND_* fills, alpha blits) which runs in C, needs no
display, and keeps 60 fps at 1280x720 on two cores. Export reuses this class: given the same
frames pushed, features and `now` values in the same order, the output is identical.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
import numpy as np
import pygame

from engine.audio.stems import StemRouting
from engine.types import Features, Frame, Reconfigured
from live.screen.flash import GUIDELINE_PER_S, FlashLimiter, exposure_lut, fit_exposure, mean_luminance
from live.screen.pulse import beat_pulse


@dataclass(frozen=True)
class Reactivity:
    """Default sensitivities; a preset's `reactivity` group (same field names) replaces it."""

    beat_zoom: float = 1.0
    band_brightness: float = 1.0
    band_hue: float = 1.0
    warp: float = 1.0
    stems: StemRouting = StemRouting()  # which stem drives which effect (a preset's [stems])


# How far each effect goes at sensitivity 1.0 (tuned by eye; 2.0 doubles them).
ZOOM_AT_1 = 0.06  # +6 % scale on the beat
BRIGHTNESS_AT_1 = 0.25  # ±25 % per unit of low-band excess over typical
HUE_DEGREES_AT_1 = 60.0  # hue of the tint swings this far per unit of high-mid imbalance
TINT_AT_1 = 0.25  # how strongly the tint colours the picture
WARP_ALPHA_AT_1 = 0.35  # how much of the previous output shows through
WARP_ZOOM = 1.02  # feedback drifts outwards
WARP_ROTATE_DEG = 0.6  # and turns, faster with onsets
STEM_ZOOM_AT_1 = 0.04  # + this per unit of drive (a stem's level × its amount, ≤ 2)
STEM_GAIN_AT_1 = 0.12
STEM_WARP_ALPHA_AT_1 = 0.15
STEM_WARP_DEG_AT_1 = 1.2


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def _num(x: float, default: float) -> float:
    """A feature value, or `default` when it is NaN or infinite (a glitch must not stop the display)."""
    x = float(x)
    return x if math.isfinite(x) else default


@dataclass(frozen=True)
class Effects:
    """One display frame's effect amounts, shared by this compositor and the GPU one."""

    zoom: float  # ≥ 1: scale of the centre crop
    warp_alpha: float  # 0..0.8: how much of the turned previous output shows through
    warp_angle: float  # degrees, counter-clockwise
    gain: float  # brightness: a multiplier on the picture (an added constant would wash it out to grey)
    tint: tuple[float, float, float]  # per-channel multiplier 0..1; (1, 1, 1) = none


def effects(f: Features, r: Reactivity, has_output: bool) -> Effects:
    """The effect amounts for features `f` and sensitivities `r` (see the module docstring)."""
    low, mid, high, onset = _num(f.low, 1.0), _num(f.mid, 1.0), _num(f.high, 1.0), _num(f.onset, 0.0)
    routing, stems = r.stems, f.stems
    # Zoom pulse (live.screen.pulse.beat_pulse): downbeats hardest, onsets between beats a little;
    # plus the zoom stem's level.
    zoom = 1.0 + float(r.beat_zoom) * (ZOOM_AT_1 * _num(beat_pulse(f), 0.0)
                                       + STEM_ZOOM_AT_1 * routing.drive(stems, "zoom"))
    warp = float(r.warp)
    alpha = angle = 0.0
    if warp > 0 and has_output:
        push = routing.drive(stems, "warp")
        alpha = _clamp(WARP_ALPHA_AT_1 * warp * (0.5 + 0.5 * _clamp(onset, 0.0, 2.0)) + STEM_WARP_ALPHA_AT_1 * warp * push,
                       0.0, 0.8)
        angle = WARP_ROTATE_DEG * warp * (1.0 + onset) + STEM_WARP_DEG_AT_1 * warp * push
    # Brightness from the low band (1.0 = typical loudness for this track) and the flash stem.
    gain = 1.0 + float(r.band_brightness) * (BRIGHTNESS_AT_1 * _clamp(low - 1.0, -1.0, 2.0)
                                             + STEM_GAIN_AT_1 * routing.drive(stems, "flash"))
    gain = _clamp(gain, 0.3, 1.8)
    # Hue: a tint whose hue swings with the high/mid balance, plus one at the harmony's hue as
    # strong as the colour stem (added as vectors on the hue circle); multiplies, so black stays black.
    tint = (1.0, 1.0, 1.0)
    amount = _clamp(TINT_AT_1 * float(r.band_hue), 0.0, 0.9)
    if amount > 0:
        swing = _clamp(high - mid, -1.5, 1.5)
        hue_swing = math.radians(HUE_DEGREES_AT_1 * swing)
        colour = min(1.0, routing.drive(stems, "colour"))
        hue_chord = 2 * math.pi * _num(stems.harmonic_hue, 0.0)
        x = min(1.0, abs(swing)) * math.cos(hue_swing) + colour * math.cos(hue_chord)
        y = min(1.0, abs(swing)) * math.sin(hue_swing) + colour * math.sin(hue_chord)
        strength = amount * min(1.0, math.hypot(x, y))
        if strength > 0:
            hue = (math.atan2(y, x) / (2 * math.pi)) % 1.0
            red, green, blue = (1.0 - strength + strength * c for c in colorsys.hsv_to_rgb(hue, 1.0, 1.0))
            tint = (red, green, blue)
    return Effects(zoom, alpha, angle, gain, tint)


def frame_to_surface(image: np.ndarray) -> pygame.Surface:
    """HxWx3 uint8 → a Surface (no display needed)."""
    h, w = image.shape[:2]
    return pygame.image.frombuffer(np.ascontiguousarray(image[..., :3], dtype=np.uint8).tobytes(), (w, h), "RGB")


def to_array(surface: pygame.Surface) -> np.ndarray:
    """A Surface → HxWx3 uint8 (for export and tests)."""
    w, h = surface.get_size()
    return np.frombuffer(pygame.image.tobytes(surface, "RGB"), dtype=np.uint8).reshape(h, w, 3).copy()


class Knobs:
    """The compositor's preset knobs, shared by the numpy and the GPU compositor."""

    reactivity: Reactivity
    crossfade_ms: float
    flash_limiter: FlashLimiter

    def configure(self, reactivity: Reactivity, crossfade_ms: float, max_flashes_per_s: float | None = None) -> Reconfigured:
        """Apply a new preset's knobs (hot reload) without losing the picture."""
        flashes = max_flashes_per_s if max_flashes_per_s is not None else self.flash_limiter.max_per_s
        applied = tuple(name for name, differs in (("reactivity", reactivity != self.reactivity),
                                                   ("crossfade_ms", float(crossfade_ms) != self.crossfade_ms),
                                                   ("max_flashes_per_s", flashes != self.flash_limiter.max_per_s)) if differs)
        self.reactivity, self.crossfade_ms = reactivity, float(crossfade_ms)
        self.flash_limiter.configure(flashes)
        return Reconfigured(applied=applied)

    def release(self) -> None:
        """Free what the compositor holds outside Python's memory (GPU objects); numpy: nothing."""


class Compositor(Knobs):
    """Crossfade + beat effects at a fixed output size.

    `push` hands over a newly rendered frame; `compose` makes the picture for one display frame.
    Both take `now` (seconds, any monotonic clock) so that export can drive them from a fixed clock.
    """

    def __init__(
        self, width: int, height: int, reactivity: Reactivity | None = None, crossfade_ms: float = 400.0,
        max_flashes_per_s: float = GUIDELINE_PER_S,
    ) -> None:
        self.width, self.height = int(width), int(height)
        self.reactivity = reactivity if reactivity is not None else Reactivity()
        self.crossfade_ms = float(crossfade_ms)
        self.flash_limiter = FlashLimiter(max_flashes_per_s)
        size = (self.width, self.height)
        self._prev = pygame.Surface(size)  # what we fade from
        self._cur = pygame.Surface(size)  # what we fade to
        self._prev.fill((0, 0, 0))
        self._cur.fill((0, 0, 0))
        self._pushed_at: float | None = None
        self._base = pygame.Surface(size)  # crossfade result, reused every frame
        self._out = pygame.Surface(size)  # final output, reused; also the feedback source
        self._out.fill((0, 0, 0))
        # Feedback lives at half size: rotozoom at full 1280x720 costs ~13 ms, at half ~2 ms, and
        # the softening that the round trip adds suits a trail.
        self._fb_size = (max(1, self.width // 2), max(1, self.height // 2))
        self._feedback = pygame.Surface(self._fb_size)
        self._warped = pygame.Surface(size)
        self._has_output = False
        self.frames_pushed = 0
        self._cut_from = pygame.Surface(size)  # the picture a soft cut fades out from
        self._cut: tuple[float, float] | None = None  # (start, seconds) of the soft cut in progress

    def begin_cut(self, now: float, seconds: float) -> None:
        """A soft cut to another preset: what is on screen now fades out over `seconds` while the new
        look (its frames and knobs) takes over underneath. 0 seconds cuts at once."""
        if seconds <= 0 or not self._has_output:
            self._cut = None
            return
        self._cut_from.blit(self._out, (0, 0))
        self._cut = (now, float(seconds))

    def cut_progress(self, now: float) -> float | None:
        """How far the soft cut has got (0..1), or None when none is running."""
        if self._cut is None:
            return None
        start, seconds = self._cut
        return _clamp((now - start) / seconds, 0.0, 1.0)

    # -- frames ---------------------------------------------------------------------------------

    def _fade(self, now: float) -> float:
        """0 → showing prev, 1 → showing cur."""
        if self._pushed_at is None:
            return 1.0
        if self.crossfade_ms <= 0:
            return 1.0
        return _clamp((now - self._pushed_at) * 1000.0 / self.crossfade_ms, 0.0, 1.0)

    def prepare(self, frame: Frame) -> pygame.Surface:
        """Frame → Surface at the output size. The expensive half of `push` (a 512² → 1280x720
        smoothscale is ~3 ms); safe to call from the render worker so the display loop skips it."""
        surf = frame_to_surface(frame.image)
        if surf.get_size() != (self.width, self.height):
            surf = _cover(surf, self.width, self.height)
        return surf

    def push(self, frame: Frame | pygame.Surface, now: float) -> None:
        """A new rendered frame (or one already `prepare`d): fade to it from whatever is showing
        now (no pop if one arrives mid-fade)."""
        surf = frame if isinstance(frame, pygame.Surface) else self.prepare(frame)
        if surf.get_size() != (self.width, self.height):
            surf = _cover(surf, self.width, self.height)
        fade = self._fade(now)
        if self.frames_pushed == 0:
            self._prev.blit(surf, (0, 0))  # the first picture shows at once: no fade from black
        elif fade < 1.0:
            self._blend_into(self._prev, fade)  # bake the half-done fade into prev
        else:
            self._prev, self._cur = self._cur, self._prev
        self._cur.blit(surf, (0, 0))
        self._pushed_at = now
        self.frames_pushed += 1

    def _blend_into(self, dest: pygame.Surface, fade: float) -> None:
        """dest = prev·(1-fade) + cur·fade."""
        if dest is not self._prev:
            dest.blit(self._prev, (0, 0))
        self._cur.set_alpha(int(round(fade * 255)))
        dest.blit(self._cur, (0, 0))
        self._cur.set_alpha(None)

    # -- effects --------------------------------------------------------------------------------

    def compose(self, features: Features | None, now: float) -> pygame.Surface:
        """The picture for this display frame. The returned Surface is reused by the next call:
        copy it if you keep it."""
        f = features if features is not None else Features()
        fx = effects(f, self.reactivity, self._has_output)
        w, h = self.width, self.height

        fade = self._fade(now)
        if fade >= 1.0:
            self._base.blit(self._cur, (0, 0))
        else:
            self._blend_into(self._base, fade)
        src = self._base

        zoom = fx.zoom
        if zoom > 1.002:
            cw, ch = max(1, int(round(w / zoom))), max(1, int(round(h / zoom)))
            crop = src.subsurface(((w - cw) // 2, (h - ch) // 2, cw, ch))
            pygame.transform.smoothscale(crop, (w, h), self._out)
        else:
            self._out.blit(src, (0, 0))

        # Feedback warp: the previous output, pushed outwards and turned, shows through.
        if fx.warp_alpha > 0:
            turned = pygame.transform.rotozoom(self._feedback, fx.warp_angle, WARP_ZOOM)
            tw, th = turned.get_size()
            fw, fh = self._fb_size
            middle = turned.subsurface(((tw - fw) // 2, (th - fh) // 2, fw, fh))
            pygame.transform.smoothscale(middle, (w, h), self._warped)
            self._warped.set_alpha(int(fx.warp_alpha * 255))
            self._out.blit(self._warped, (0, 0))

        gain = fx.gain
        if gain < 0.995:
            v = int(round(gain * 255))
            self._out.fill((v, v, v), special_flags=pygame.BLEND_RGB_MULT)
        elif gain > 1.005:  # multiply (c·gain, as c + c·(gain − 1)): brighter, and the contrast stays
            extra = self._out.copy()
            extra.fill((int(round((gain - 1.0) * 255)),) * 3, special_flags=pygame.BLEND_RGB_MULT)
            self._out.blit(extra, (0, 0), special_flags=pygame.BLEND_RGB_ADD)

        tint = tuple(int(round(255 * c)) for c in fx.tint)
        if tint != (255, 255, 255):
            self._out.fill(tint, special_flags=pygame.BLEND_RGB_MULT)

        pygame.transform.smoothscale(self._out, self._fb_size, self._feedback)
        self._limit_flashes(now)
        self._has_output = True
        progress = self.cut_progress(now)
        if progress is not None:
            if progress >= 1.0:
                self._cut = None
            else:  # after the feedback copy: the old look must not echo on in the trail
                self._cut_from.set_alpha(int(round((1.0 - progress) * 255)))
                self._out.blit(self._cut_from, (0, 0))
                self._cut_from.set_alpha(None)
        return self._out

    def _limit_flashes(self, now: float) -> None:
        """Hold the frame's mean luminance when a change would exceed the flash budget."""
        lum = self._luminance()
        gain = self.flash_limiter.gain(lum, now)
        if gain != 1.0:
            pixels = pygame.surfarray.pixels3d(self._out)
            pixels[...] = exposure_lut(fit_exposure(pixels, lum * gain))[pixels]
            del pixels  # unlock the surface
            pygame.transform.smoothscale(self._out, self._fb_size, self._feedback)
            lum = self._luminance()
        self.flash_limiter.record(lum, now)

    def _luminance(self) -> float:
        """The output's mean luminance, read through a view of its pixels (x, y, rgb): the same
        pixels `mean_luminance` samples of an HxWx3 copy, without the 4 ms copy at 1280x720."""
        view = pygame.surfarray.pixels3d(self._out)
        lum = mean_luminance(view)
        del view  # unlock the surface
        return lum

    def to_array(self, surface: pygame.Surface | None = None) -> np.ndarray:
        """The last composed picture (or `surface`) as HxWx3 uint8."""
        return to_array(surface if surface is not None else self._out)


def _cover(surf: pygame.Surface, width: int, height: int) -> pygame.Surface:
    """Scale to cover width x height and crop the middle: renders are square, screens are not."""
    sw, sh = surf.get_size()
    scale = max(width / sw, height / sh)
    tw, th = max(width, int(math.ceil(sw * scale))), max(height, int(math.ceil(sh * scale)))
    big = pygame.transform.smoothscale(surf, (tw, th))
    return big.subsurface(((tw - width) // 2, (th - height) // 2, width, height))
