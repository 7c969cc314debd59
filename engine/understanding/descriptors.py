"""Descriptor tables: the words the music is heard as, and the words pictures are made of.

Two uses:
- the zero-shot head's bank (CLAP text tower): genres, moods, energy, instruments, eras, each a phrase
  CLAP was trained on ("techno music", "a sad song");
- the VAG prompt generator (engine/understanding/vag.py): per genre, visual words and settings; per mood region,
  visual mood words; art styles; generic settings.

Every genre has a family (for VAG's softer genre similarity), visual words and settings. Moods carry a
(valence, arousal) point in [-1, 1]², so the zero-shot head can estimate where the music sits.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Genre:
    name: str
    family: str
    words: tuple[str, ...]  # visual words the genre evokes
    settings: tuple[str, ...]  # places a picture of it could be set in


def _g(name: str, family: str, words: str, settings: str) -> Genre:
    return Genre(name, family, tuple(w.strip() for w in words.split(",")), tuple(s.strip() for s in settings.split(",")))


GENRES: tuple[Genre, ...] = (
    # electronic
    _g("techno", "electronic", "strobing lights, concrete, pulsing lasers, monochrome geometry",
       "an industrial warehouse, a dark underground club, a brutalist tunnel"),
    _g("house", "electronic", "warm disco lights, glossy reflections, swirling color",
       "a sunlit rooftop party, a crowded dance floor, a Chicago loft"),
    _g("trance", "electronic", "soaring light beams, ethereal haze, luminous waves",
       "a mountain top at dawn, an endless open sky, a festival main stage"),
    _g("drum and bass", "electronic", "speed lines, liquid chrome, fractured light",
       "a rain-soaked city at night, a high-speed tunnel, a neon subway"),
    _g("dubstep", "electronic", "glitching shapes, heavy bass waves, distorted metal",
       "a collapsing megastructure, a cyberpunk alley, a storm of debris"),
    _g("ambient", "electronic", "soft gradients, floating particles, slow mist",
       "a misty lake, an empty white room, a drifting cloudscape"),
    _g("synthwave", "electronic", "neon grids, chrome letters, magenta sunsets",
       "a retro highway at dusk, an 80s arcade, a palm-lined coast"),
    _g("idm", "electronic", "intricate fractals, tiny glitches, generative patterns",
       "a microscopic circuit world, an abstract data landscape, a crystal lattice"),
    _g("electro", "electronic", "robots, chrome reflections, vector graphics",
       "a futuristic dance hall, a space station corridor, a neon boulevard"),
    _g("downtempo", "electronic", "velvet shadows, slow smoke, amber light",
       "a late-night lounge, a hazy balcony, a quiet beach at dusk"),
    _g("hardstyle", "electronic", "fire columns, massive lasers, sharp geometry",
       "a stadium rave, a volcanic arena, a stage of pyrotechnics"),
    _g("lo-fi hip hop", "electronic", "cozy lamplight, rain on windows, soft film grain",
       "a bedroom study desk, a rainy cafe window, a quiet anime street"),
    # hip hop / rnb
    _g("hip hop", "urban", "graffiti, gold chains, bold typography",
       "a city block at night, a basketball court, a subway platform"),
    _g("trap", "urban", "purple haze, diamond glints, dark luxury",
       "a smoky penthouse, a midnight parking lot, a strip of neon signs"),
    _g("r&b", "urban", "silk, candlelight, soft focus glow",
       "an intimate lounge, a city skyline at night, a velvet bedroom"),
    _g("soul", "urban", "warm brass tones, vintage film, sunset orange",
       "a 60s diner, a church hall, a golden-hour street"),
    _g("funk", "urban", "wah colors, platform shoes, psychedelic swirls",
       "a 70s dance club, a bustling street party, a mirror-ball stage"),
    _g("disco", "urban", "mirror balls, glitter, rainbow spotlights",
       "a 70s discotheque, a roller rink, a glittering dance floor"),
    _g("gospel", "urban", "radiant light rays, robes, stained glass",
       "a sunlit church, a choir loft, a hilltop at sunrise"),
    # rock
    _g("rock", "rock", "electric sparks, leather, stage smoke",
       "a packed arena, a desert highway, a garage stage"),
    _g("punk", "rock", "torn posters, safety pins, spray paint",
       "a dingy basement club, a graffiti-covered alley, a riot street"),
    _g("heavy metal", "rock", "iron, flames, thunder, skulls",
       "a volcanic wasteland, a gothic fortress, a stormy battlefield"),
    _g("grunge", "rock", "flannel, rain, faded film, muted greens",
       "a rainy Seattle street, a cluttered rehearsal room, a grey forest"),
    _g("indie rock", "rock", "polaroids, fairy lights, pastel film",
       "a small-town street, a bedroom gig, a summer festival field"),
    _g("psychedelic rock", "rock", "melting colors, kaleidoscopes, paisley",
       "a desert under swirling skies, a 60s light show, a mushroom forest"),
    _g("shoegaze", "rock", "blurred light, washed-out pink, dreamy haze",
       "a foggy field, an out-of-focus city, a sea of reverb clouds"),
    _g("post-rock", "rock", "vast horizons, slow crescendos of light, silhouettes",
       "an arctic plain, a cliff above the sea, an abandoned cathedral"),
    # pop
    _g("pop", "pop", "candy colors, glossy highlights, confetti",
       "a bright studio set, a summer boardwalk, a pastel bedroom"),
    _g("k-pop", "pop", "sparkling stage lights, bold pastel fashion, crisp choreography",
       "a futuristic Seoul street, a neon stage, a candy-colored set"),
    _g("synth-pop", "pop", "pastel neon, geometric shapes, vintage synthesizers",
       "an 80s bedroom, a city at twilight, a mirrored hall"),
    _g("dream pop", "pop", "soft clouds, iridescent light, gauzy curtains",
       "a pastel sky, a hazy beach, a room full of floating petals"),
    # jazz / blues
    _g("jazz", "jazz", "smoky light, brass highlights, art deco lines",
       "a dim speakeasy, a rainy New York street, a basement jazz club"),
    _g("bebop", "jazz", "angular shapes, quick brushstrokes, saxophone gleam",
       "a 1950s club, a neon-lit Harlem street, a crowded bar"),
    _g("blues", "jazz", "deep indigo, worn wood, slide guitar glint",
       "a Mississippi porch, a juke joint, a lonely railway at night"),
    _g("swing", "jazz", "ballroom glamour, polka dots, big band brass",
       "a 1940s ballroom, a dance hall, a grand hotel"),
    # classical
    _g("classical", "classical", "marble, gilded ornaments, flowing drapery",
       "a grand concert hall, a palace garden, a candlelit salon"),
    _g("baroque", "classical", "ornate gold, harpsichord filigree, chiaroscuro",
       "a baroque chapel, a versailles hall, a royal court"),
    _g("opera", "classical", "velvet curtains, dramatic spotlights, costumes",
       "an opera house stage, a tragic balcony, a grand theater"),
    _g("cinematic", "classical", "epic scale, volumetric light, sweeping vistas",
       "a vast canyon, a starship bridge, a kingdom at dawn"),
    _g("minimalism", "classical", "repeating lines, clean space, subtle shifts",
       "an empty gallery, a grid of windows, a calm shoreline"),
    # folk / country / world
    _g("folk", "folk", "hand-woven textures, wildflowers, warm wood",
       "a forest cabin, a campfire clearing, a rolling meadow"),
    _g("country", "folk", "denim, dusty roads, golden wheat",
       "a ranch at sunset, an open prairie, a small-town bar"),
    _g("bluegrass", "folk", "banjo wood, green hills, porch lanterns",
       "an Appalachian hillside, a barn dance, a creek at dusk"),
    _g("celtic", "folk", "knotwork, mossy stones, mist",
       "an Irish cliff, a stone circle, a highland glen"),
    _g("reggae", "world", "red gold and green, palm shade, sun haze",
       "a Jamaican beach, a sound-system yard, a tropical hillside"),
    _g("afrobeat", "world", "vibrant kente patterns, brass, dancing crowds",
       "a Lagos street party, a sunlit market, a rooftop at dusk"),
    _g("latin", "world", "bright florals, sun-drenched colors, rhythm",
       "a Havana street, a plaza at night, a tropical festival"),
    _g("salsa", "world", "swirling dresses, red and gold, spotlights",
       "a salsa club, a Caribbean dance hall, a lively street"),
    _g("bossa nova", "world", "soft sunlight, linen, ocean breeze",
       "a Rio beach cafe, a seaside terrace, an airy apartment"),
    _g("flamenco", "world", "ruffled red dresses, candlelight, fiery gestures",
       "an Andalusian courtyard, a tablao stage, a whitewashed village"),
    _g("indian classical", "world", "saffron, marigolds, intricate mandalas",
       "a temple courtyard, a river ghat at dawn, a palace of mirrors"),
    _g("reggaeton", "world", "neon tropics, gold jewelry, heat haze",
       "a Puerto Rican street party, a club with palm lights, a beach at night"),
)

GENRE_BY_NAME: dict[str, Genre] = {g.name: g for g in GENRES}

# mood → (valence, arousal) in [-1, 1]², after Russell's circumplex; visual words are in MOOD_WORDS.
MOODS: dict[str, tuple[float, float]] = {
    "happy": (0.8, 0.5),
    "euphoric": (0.9, 0.9),
    "uplifting": (0.7, 0.6),
    "playful": (0.7, 0.4),
    "romantic": (0.6, -0.1),
    "peaceful": (0.6, -0.7),
    "dreamy": (0.4, -0.5),
    "nostalgic": (0.1, -0.3),
    "mysterious": (-0.1, 0.1),
    "melancholic": (-0.6, -0.4),
    "sad": (-0.8, -0.5),
    "lonely": (-0.6, -0.6),
    "dark": (-0.6, 0.2),
    "tense": (-0.5, 0.6),
    "angry": (-0.8, 0.8),
    "aggressive": (-0.6, 0.9),
    "epic": (0.3, 0.8),
    "triumphant": (0.7, 0.8),
}

# energy word → arousal
ENERGY: dict[str, float] = {
    "very calm": -0.9,
    "calm": -0.6,
    "relaxed": -0.3,
    "moderate": 0.0,
    "driving": 0.4,
    "energetic": 0.7,
    "intense": 0.9,
}

INSTRUMENTS: tuple[str, ...] = (
    "piano", "acoustic guitar", "electric guitar", "distorted guitar", "bass guitar", "synthesizer",
    "drum machine", "acoustic drums", "strings", "violin", "cello", "brass", "saxophone", "trumpet",
    "flute", "choir", "female vocals", "male vocals", "rap vocals", "organ", "harp", "banjo",
    "percussion", "808 bass",
)

ERAS: tuple[str, ...] = ("1950s", "1960s", "1970s", "1980s", "1990s", "2000s", "2010s", "modern", "futuristic")

# Visual mood words by VA quadrant (valence sign, arousal sign) and a neutral centre.
MOOD_WORDS: dict[str, tuple[str, ...]] = {
    "bright-energetic": ("vibrant", "radiant", "joyful", "explosive colors", "dazzling", "exuberant"),
    "bright-calm": ("serene", "gentle", "warm", "soft pastel", "tranquil", "luminous"),
    "dark-energetic": ("menacing", "chaotic", "fiery", "stormy", "ominous red", "violent contrast"),
    "dark-calm": ("melancholic", "somber", "cold blue", "foggy", "desolate", "muted"),
    "neutral": ("atmospheric", "balanced", "subtle", "cinematic", "moody"),
}

STYLES: tuple[str, ...] = (
    "digital painting", "oil painting", "watercolor", "ink illustration", "cinematic photograph",
    "35mm film photo", "anime illustration", "concept art", "3d render", "vaporwave art",
    "ukiyo-e woodblock print", "impressionist painting", "surrealist painting", "art nouveau poster",
    "bauhaus poster", "pixel art", "stained glass", "collage", "charcoal drawing", "neon line art",
    "psychedelic poster", "low poly render", "double exposure photo", "long exposure photo",
)

SETTINGS: tuple[str, ...] = (
    "a vast cosmic nebula", "a neon city at night", "a misty forest", "an ocean under the moon",
    "a desert at sunset", "a snowy mountain range", "an abstract void", "a rainy street",
    "a field of flowers", "a crystal cave", "a floating island", "an underwater reef",
    "a burning sky", "a quiet lake at dawn", "a futuristic megacity", "an ancient temple",
)

# Tempo → motion words (bpm upper bounds, ascending).
TEMPO_WORDS: tuple[tuple[float, tuple[str, ...]], ...] = (
    (80.0, ("still", "slow drifting", "suspended")),
    (110.0, ("flowing", "swaying", "gently moving")),
    (135.0, ("pulsing", "rhythmic", "dancing")),
    (10_000.0, ("racing", "frenetic", "rapid motion blur")),
)

# The zero-shot bank: category → label → phrase for CLAP's text tower (how CLAP captions music).
DEFAULT_BANK: dict[str, dict[str, str]] = {
    "genre": {g.name: f"{g.name} music" for g in GENRES},
    "mood": {m: f"{m} music" for m in MOODS},
    "energy": {e: f"{e} music" for e in ENERGY},
    "instrument": {i: f"music with {i}" for i in INSTRUMENTS},
    "era": {e: f"music from the {e}" if e[0].isdigit() else f"{e} sounding music" for e in ERAS},
}


def bank_with_overrides(overrides: dict[str, tuple[str, ...] | list[str]] | None = None) -> dict[str, dict[str, str]]:
    """The default bank with preset overrides: an overridden category is replaced by the given phrases
    (label = phrase). Unknown categories are added."""
    bank = {c: dict(v) for c, v in DEFAULT_BANK.items()}
    for category, phrases in (overrides or {}).items():
        bank[category] = {p: p for p in phrases}
    return bank
