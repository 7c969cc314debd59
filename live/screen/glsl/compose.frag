#version 330
// The compositor on the GPU: crossfade, beat zoom, feedback warp, band brightness, hue tint and a
// soft shoulder, in the numpy compositor's order (live/compositor.py) so both give one picture.
// Every texture here is in image orientation: v = 0 is the top row.
in vec2 v_uv;
out vec4 f_color;
uniform sampler2D u_prev, u_cur, u_feedback;
uniform vec2 u_prev_scale, u_cur_scale;  // "cover" crop of each frame into the output's aspect
uniform float u_fade, u_zoom, u_warp_alpha, u_warp_cos, u_warp_sin, u_warp_zoom;
uniform float u_gain_mul, u_has_feedback;
uniform vec3 u_tint;
uniform vec2 u_aspect;  // (width / height, 1): rotation happens in square pixels
const float KNEE = 0.82;

vec3 frame_at(vec2 uv) {
    vec3 a = texture(u_prev, (uv - 0.5) * u_prev_scale + 0.5).rgb;
    vec3 b = texture(u_cur, (uv - 0.5) * u_cur_scale + 0.5).rgb;
    return mix(a, b, u_fade);
}

void main() {
    vec2 uv = (v_uv - 0.5) / u_zoom + 0.5;
    vec3 c = frame_at(uv);
    if (u_has_feedback > 0.5 && u_warp_alpha > 0.0) {
        vec2 p = (v_uv - 0.5) * u_aspect / u_warp_zoom;
        p = mat2(u_warp_cos, -u_warp_sin, u_warp_sin, u_warp_cos) * p;
        vec2 fuv = p / u_aspect + 0.5;
        float inside = step(0.0, fuv.x) * step(fuv.x, 1.0) * step(0.0, fuv.y) * step(fuv.y, 1.0);
        c = mix(c, texture(u_feedback, fuv).rgb * inside, u_warp_alpha);
    }
    c = c * u_gain_mul;  // multiply: an added constant would wash the picture out to grey
    c *= u_tint;
    vec3 over = max(c - KNEE, 0.0);
    c = min(c, KNEE) + (1.0 - KNEE) * (1.0 - exp(-over / (1.0 - KNEE)));
    f_color = vec4(c, 1.0);
}
