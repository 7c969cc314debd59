#version 330
// One frame of the weights-free look: the previous frame, warped (zoom, rotation, flow field) and
// faded, with this frame's motifs drawn over it. HDR out; present.frag tone-maps.
// p: centred coordinates, y in -1..1, x in -aspect..aspect. px: one pixel in p units.
in vec2 v_uv;
out vec4 f_color;

uniform sampler2D u_prev;   // last scene (HDR)
uniform sampler2D u_audio;  // 64x2: row 0 waveform (-1..1), row 1 spectrum (1 = typical)
uniform vec2 u_res;
uniform float u_time, u_beat, u_bass, u_onset, u_high, u_seed;
uniform float u_warp, u_ink, u_kaleido, u_tunnel, u_ribbons, u_particles;
uniform float u_zoom, u_rot, u_decay, u_flow, u_sym, u_line, u_sat, u_fresh;
uniform vec3 u_pal[5];

const float TAU = 6.28318530718;
float px;
float aspect;

vec3 palette(float x) {
    x = clamp(x, 0.0, 1.0) * 4.0;
    int i = int(min(floor(x), 3.0));
    vec3 c = mix(u_pal[i], u_pal[i + 1], x - float(i));
    float g = dot(c, vec3(0.2126, 0.7152, 0.0722));
    return max(mix(vec3(g), c, u_sat), 0.0);
}

float hash12(vec2 p) {
    vec3 p3 = fract(vec3(p.xyx) * 0.1031);
    p3 += dot(p3, p3.yzx + 33.33);
    return fract((p3.x + p3.y) * p3.z);
}

vec2 hash22(vec2 p) {
    vec3 p3 = fract(vec3(p.xyx) * vec3(0.1031, 0.1030, 0.0973));
    p3 += dot(p3, p3.yzx + 33.33);
    return fract((p3.xx + p3.yz) * p3.zy);
}

float noise(vec2 p) {
    vec2 i = floor(p), f = fract(p);
    vec2 u = f * f * (3.0 - 2.0 * f);
    return mix(mix(hash12(i), hash12(i + vec2(1.0, 0.0)), u.x),
               mix(hash12(i + vec2(0.0, 1.0)), hash12(i + vec2(1.0, 1.0)), u.x), u.y);
}

vec2 curl(vec2 p) {
    const float e = 0.05;
    float dy = noise(p + vec2(0.0, e)) - noise(p - vec2(0.0, e));
    float dx = noise(p + vec2(e, 0.0)) - noise(p - vec2(e, 0.0));
    return vec2(dy, -dx) / (2.0 * e);
}

// Coverage of a line `widthPx` wide at distance `d` (in units where one pixel is `g`): exact
// one-pixel anti-aliasing, so lines stay crisp at any resolution.
float stroke(float d, float g, float widthPx) {
    return clamp(0.5 * widthPx + 0.5 - abs(d) / max(g, 1e-6), 0.0, 1.0);
}

vec4 over(vec4 below, vec3 colour, float cover) {
    return vec4(mix(below.rgb, colour, cover), max(below.a, cover));
}

// Waveform and spectrum ribbons, drawn from the live audio.
vec4 ribbons(vec2 p) {
    vec4 c = vec4(0.0);
    float x01 = clamp(p.x / (2.0 * aspect) + 0.5, 0.0, 1.0);
    float w = texture(u_audio, vec2(x01, 0.25)).r;
    for (int k = 0; k < 3; k++) {
        float fk = float(k) - 1.0;
        float amp = (fk == 0.0 ? 0.30 : -0.16) * (0.7 + 0.3 * min(u_bass, 2.0));
        float y = fk * 0.5 + amp * w;
        float slope = dFdx(y) / max(dFdx(p.x), 1e-6);
        float d = (p.y - y) / sqrt(1.0 + slope * slope);
        float width = u_line * (fk == 0.0 ? 1.6 : 1.0) * (1.0 + u_beat);
        c = over(c, palette(0.62 + 0.18 * fk + 0.2 * u_beat) * 1.3, stroke(d, px, width));
    }
    float r = length(p), a = abs(atan(p.y, p.x)) / 3.14159265;
    float s = texture(u_audio, vec2(a, 0.75)).r;
    float radius = 0.32 + 0.09 * min(s, 3.0) + 0.12 * u_beat;
    c = over(c, palette(0.9), stroke(r - radius, px, u_line * 1.3));
    return c;
}

// Mirror-folded lattice: crisp lines and filled triangles turning around the centre.
vec4 kaleidoscope(vec2 p) {
    float sector = TAU / max(u_sym, 2.0);
    float a = mod(atan(p.y, p.x) + 0.08 * u_time, sector);
    a = abs(a - 0.5 * sector);
    float r = length(p);
    vec2 q = r * vec2(cos(a), sin(a));
    float scale = 3.2 + 0.8 * sin(0.21 * u_time) + 0.4 * u_beat;
    vec2 g = q * scale - vec2(0.35 * u_time, 0.0);
    // Three line families of a triangular lattice; distances in lattice units, one pixel = px*scale.
    float l1 = g.y * 1.1547;
    float l2 = g.x + 0.57735 * g.y;
    float l3 = g.x - 0.57735 * g.y;
    float d1 = abs(fract(l1) - 0.5), d2 = abs(fract(l2) - 0.5), d3 = abs(fract(l3) - 0.5);
    float g1 = px * scale * 1.1547;
    float lines = max(stroke(0.5 - d1, g1, u_line), max(stroke(0.5 - d2, g1, u_line), stroke(0.5 - d3, g1, u_line)));
    vec3 cell = floor(vec3(l1, l2, l3));
    float h = hash12(cell.xy + cell.z * 17.0 + u_seed);
    float fill = step(0.62, h) * (0.35 + 0.4 * u_beat);
    vec4 c = over(vec4(0.0), palette(0.25 + 0.5 * h), fill);
    float fade = smoothstep(1.9, 0.6, r);
    return over(c, palette(0.75 + 0.2 * sin(r * 3.0 - u_time)) * 1.2, lines) * vec4(1.0, 1.0, 1.0, fade);
}

// Flying down a tunnel of rings and spokes; the nearest ring lights up on the beat.
vec4 tunnel(vec2 p) {
    float r = max(length(p), 1e-3);
    float a = atan(p.y, p.x);
    float z = 0.55 / r + 1.3 * u_time;
    float spokes = 10.0;
    float u = a / TAU * spokes + 0.05 * u_time;
    float gz = px * 0.55 / (r * r), gu = px * spokes / (TAU * r);  // analytic: atan wraps
    float dz = abs(fract(z) - 0.5), du = abs(fract(u) - 0.5);
    float fadeZ = smoothstep(0.35, 0.08, gz), fadeU = smoothstep(0.35, 0.08, gu);
    float ring = stroke(0.5 - dz, gz, u_line * 1.4) * fadeZ;
    float spoke = stroke(0.5 - du, gu, u_line) * fadeU;
    float depth = smoothstep(0.05, 0.55, r);
    float lit = 1.0 + 1.5 * u_beat * step(0.5, fract(floor(z) * 0.5));
    vec4 c = over(vec4(0.0), palette(0.5) * 0.9, spoke * 0.7);
    c = over(c, palette(fract(floor(z) * 0.137) * 0.5 + 0.45) * lit, ring);
    return vec4(c.rgb, c.a * depth);
}

// A star field rushing outwards; dots are a few pixels, sharp-edged.
vec4 particles(vec2 p) {
    vec4 c = vec4(0.0);
    for (int layer = 0; layer < 3; layer++) {
        float fl = float(layer);
        float s = fract(0.12 * u_time * (1.0 + 0.3 * u_bass) + fl / 3.0);
        float scale = mix(16.0, 2.0, s);
        float fade = smoothstep(0.0, 0.25, s) * smoothstep(1.0, 0.8, s);
        vec2 q = p * scale + fl * 7.31 + u_seed;
        vec2 id = floor(q);
        vec2 at = hash22(id) * 0.7 + 0.15;
        float d = length(fract(q) - at) / scale;
        float size = (1.5 + 3.0 * hash12(id * 1.7)) * (1.0 + 0.8 * u_beat);
        float on = step(0.7, hash12(id + 9.2));
        c = over(c, palette(0.55 + 0.45 * hash12(id + 3.1)) * 1.4, stroke(d, px, size) * fade * on);
    }
    return c;
}

// Flow-field ink: contour lines of a drifting noise field, smeared by the feedback flow.
vec4 ink(vec2 p) {
    float n = noise(p * 1.6 + vec2(0.13 * u_time, -0.07 * u_time) + u_seed) * 0.6
            + noise(p * 3.3 - vec2(0.05 * u_time, 0.11 * u_time)) * 0.4;
    float levels = 9.0;
    float v = n * levels;
    float g = length(vec2(dFdx(v), dFdy(v)));
    float line = stroke(0.5 - abs(fract(v) - 0.5), g, u_line * (1.0 + 0.6 * u_onset));
    return vec4(palette(0.35 + 0.6 * fract(floor(v) * 0.37)) * 1.1, line);
}

void main() {
    aspect = u_res.x / u_res.y;
    px = 2.0 / u_res.y;
    vec2 p = (v_uv - 0.5) * vec2(2.0 * aspect, 2.0);

    // Feedback: sample the last frame closer to the centre (zoom), turned, pushed along the flow.
    vec2 q = p / u_zoom;
    float cr = cos(u_rot), sr = sin(u_rot);
    q = mat2(cr, sr, -sr, cr) * q;
    q += u_flow * 0.004 * curl(p * 1.4 + vec2(0.0, 0.15 * u_time) + u_seed);
    vec2 suv = q / vec2(2.0 * aspect, 2.0) + 0.5;
    float inside = step(0.0, suv.x) * step(suv.x, 1.0) * step(0.0, suv.y) * step(suv.y, 1.0);
    vec3 background = palette(0.02) * (0.55 + 0.45 * (1.0 - 0.35 * dot(p, p)));
    vec3 prev = texture(u_prev, suv).rgb;
    vec3 col = mix(background, prev, u_decay * inside * (1.0 - u_fresh));

    vec4 layer;
    if (u_ink > 0.01) { layer = ink(p); col = mix(col, layer.rgb, layer.a * u_ink); }
    if (u_kaleido > 0.01) { layer = kaleidoscope(p); col = mix(col, layer.rgb, layer.a * u_kaleido); }
    if (u_tunnel > 0.01) { layer = tunnel(p); col = mix(col, layer.rgb, layer.a * u_tunnel); }
    if (u_particles > 0.01) { layer = particles(p); col = mix(col, layer.rgb, layer.a * u_particles); }
    if (u_ribbons > 0.01) { layer = ribbons(p); col = mix(col, layer.rgb, layer.a * u_ribbons); }

    // The beat: a sharp shock ring leaving the centre.
    float shock = 0.25 + 1.6 * (1.0 - u_beat);
    col = mix(col, palette(0.97) * 1.2, stroke(length(p) - shock, px, 3.0 * u_line) * u_beat);
    f_color = vec4(col, 1.0);
}
