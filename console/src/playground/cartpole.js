// CartPole as Gym's CartPole-v1 simulates it (Barto, Sutton and Anderson's equations, Euler steps of 20 ms):
// the environment the rl policies were trained in, so that the policy sees the observations it knows.
const GRAVITY = 9.8;
const CART_MASS = 1.0;
const POLE_MASS = 0.1;
const TOTAL_MASS = CART_MASS + POLE_MASS;
const HALF_LENGTH = 0.5;
const POLE_MASS_LENGTH = POLE_MASS * HALF_LENGTH;
const FORCE = 10.0;
export const TAU = 0.02; // seconds per step
export const X_LIMIT = 2.4;
export const THETA_LIMIT = (12 * 2 * Math.PI) / 360;
export const MAX_STEPS = 500; // CartPole-v1's time limit

// The start of an episode: each of x, x', theta, theta' uniform in [-0.05, 0.05], as Gym's reset draws it.
export function reset(random = Math.random) {
  return [0, 0, 0, 0].map(() => random() * 0.1 - 0.05);
}

// One step under action 0 (push left) or 1 (push right): the next state.
export function step([x, xDot, theta, thetaDot], action) {
  const force = action === 1 ? FORCE : -FORCE;
  const cos = Math.cos(theta);
  const sin = Math.sin(theta);
  const temp = (force + POLE_MASS_LENGTH * thetaDot * thetaDot * sin) / TOTAL_MASS;
  const thetaAcc = (GRAVITY * sin - cos * temp) / (HALF_LENGTH * (4.0 / 3.0 - (POLE_MASS * cos * cos) / TOTAL_MASS));
  const xAcc = temp - (POLE_MASS_LENGTH * thetaAcc * cos) / TOTAL_MASS;
  return [x + TAU * xDot, xDot + TAU * xAcc, theta + TAU * thetaDot, thetaDot + TAU * thetaAcc];
}

// Why an episode ends in this state, or null while the pole is up and the cart on the track.
export function ended([x, , theta]) {
  if (Math.abs(x) > X_LIMIT) return 'the cart left the track';
  if (Math.abs(theta) > THETA_LIMIT) return 'the pole fell past 12°';
  return null;
}

// The cart and pole on a canvas, in the page's own colours, scaled to the canvas's width.
export function draw(canvas, [x, , theta]) {
  const context = canvas.getContext('2d');
  const style = getComputedStyle(canvas);
  const { width, height } = canvas;
  const scale = width / (2 * X_LIMIT * 1.1);
  const track = height * 0.75;
  const cartX = width / 2 + x * scale;
  const cartWidth = 0.5 * scale;
  const cartHeight = 0.3 * scale;
  const pole = 2 * HALF_LENGTH * scale;
  context.clearRect(0, 0, width, height);
  context.strokeStyle = style.getPropertyValue('--muted') || '#4b5563';
  context.lineWidth = 2;
  context.beginPath();
  context.moveTo(width / 2 - X_LIMIT * scale, track);
  context.lineTo(width / 2 + X_LIMIT * scale, track);
  context.stroke();
  context.fillStyle = style.getPropertyValue('--ink') || '#111827';
  context.fillRect(cartX - cartWidth / 2, track - cartHeight, cartWidth, cartHeight);
  context.strokeStyle = style.getPropertyValue('--accent') || '#1d4ed8';
  context.lineWidth = Math.max(4, scale * 0.08);
  context.lineCap = 'round';
  context.beginPath();
  context.moveTo(cartX, track - cartHeight);
  context.lineTo(cartX + pole * Math.sin(theta), track - cartHeight - pole * Math.cos(theta));
  context.stroke();
}
