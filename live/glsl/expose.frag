#version 330
// The flash limiter's exposure: scale down, or lift towards white without clipping.
in vec2 v_uv;
out vec4 f_color;
uniform sampler2D u_src;
uniform float u_mul, u_lift;
void main() {
    vec3 c = texture(u_src, v_uv).rgb * u_mul;
    f_color = vec4(c + (1.0 - c) * u_lift, 1.0);
}
