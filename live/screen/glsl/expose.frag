#version 330
// The flash limiter's exposure (live.flash.exposure_lut): scale down, or brighten along
// 1 - (1 - c)^g, which keeps the shadows' contrast and never clips a highlight.
in vec2 v_uv;
out vec4 f_color;
uniform sampler2D u_src;
uniform float u_gain;
void main() {
    vec3 c = texture(u_src, v_uv).rgb;
    vec3 up = vec3(1.0) - pow(max(vec3(1.0) - c, vec3(0.0)), vec3(u_gain));
    f_color = vec4(u_gain <= 1.0 ? c * u_gain : up, 1.0);
}
