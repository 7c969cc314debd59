#version 330
// Exposure and a soft shoulder instead of clipping, flipped so the read-back rows run top-down.
in vec2 v_uv;
out vec4 f_color;
uniform sampler2D u_src;
uniform float u_exposure;
const float KNEE = 0.72;

vec3 shoulder(vec3 c) {
    vec3 over = max(c - KNEE, 0.0);
    return min(c, KNEE) + (1.0 - KNEE) * (1.0 - exp(-over / (1.0 - KNEE)));
}

void main() {
    vec3 c = texture(u_src, vec2(v_uv.x, 1.0 - v_uv.y)).rgb * u_exposure;
    f_color = vec4(shoulder(max(c, 0.0)), 1.0);
}
