// The meeting room's device check: camera and microphone pickers, a local
// preview and a microphone level meter, shown before joining. Device labels
// appear only after the browser granted access once, so the lists are
// filled after the first capture.

import { h } from '../dom.js';
import { t } from '../i18n.js';

/** Capture size asked of the camera; the browser may pick a smaller one. */
const VIDEO_CONSTRAINTS = { width: { ideal: 640 }, height: { ideal: 480 } };

/** Returns a message for a failed getUserMedia call. */
export function captureErrorText(error) {
  if (error && error.name === 'NotAllowedError') return t('room.deviceDenied');
  if (error && error.name === 'NotFoundError') return t('room.deviceMissing');
  return t('room.deviceFailed', { reason: (error && error.message) || '' });
}

/**
 * Measures the loudness of a stream's audio into a `<meter>` until stopped.
 * Returns a function that stops it.
 */
export function startLevelMeter(stream, meter) {
  if (stream.getAudioTracks().length === 0 || typeof AudioContext === 'undefined') return () => {};
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  context.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let frame = 0;
  const tick = () => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const sample of samples) sum += sample * sample;
    // RMS amplitude scaled so that ordinary speech fills most of the meter.
    meter.value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
    frame = requestAnimationFrame(tick);
  };
  tick();
  return () => {
    cancelAnimationFrame(frame);
    context.close();
  };
}

/**
 * Builds the device check with its `element`. `open()` starts the capture
 * and `stream()` returns it, or null when none could be opened. `stop()`
 * releases the devices. `take()` hands the capture over to the caller, who
 * then owns its tracks.
 */
export function createDeviceCheck() {
  let stream = null;
  let stopMeter = () => {};
  const preview = h('video', { class: 'room-preview', autoplay: true, muted: true, playsinline: true, 'aria-label': t('room.preview') });
  preview.muted = true;
  const meter = h('meter', { class: 'room-meter', min: 0, max: 1, value: 0, 'aria-label': t('room.level') });
  const cameraSelect = h('select', { name: 'camera', onchange: () => open() });
  const microphoneSelect = h('select', { name: 'microphone', onchange: () => open() });
  const message = h('p', { class: 'hint', role: 'status' });

  function release() {
    stopMeter();
    stopMeter = () => {};
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    preview.srcObject = null;
  }

  function fill(select, devices, kind, chosen) {
    const options = devices
      .filter((device) => device.kind === kind)
      .map((device, index) => h('option', { value: device.deviceId, selected: device.deviceId === chosen }, device.label || t('room.deviceNumber', { number: index + 1 })));
    select.replaceChildren(h('option', { value: 'none' }, t('room.deviceNone')), ...options);
    if (chosen === 'none' || options.length === 0) select.value = 'none';
  }

  async function listDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    const track = (kind) => stream && stream[kind]()[0];
    const current = (kind, select) => (track(kind) ? track(kind).getSettings().deviceId : select.value || 'none');
    fill(cameraSelect, devices, 'videoinput', current('getVideoTracks', cameraSelect));
    fill(microphoneSelect, devices, 'audioinput', current('getAudioTracks', microphoneSelect));
  }

  function constraint(select, extra = true) {
    if (select.value === 'none') return false;
    return select.value ? { ...(extra === true ? {} : extra), deviceId: { exact: select.value } } : extra;
  }

  async function open() {
    release();
    const audio = constraint(microphoneSelect);
    const video = constraint(cameraSelect, VIDEO_CONSTRAINTS);
    message.textContent = '';
    if (!navigator.mediaDevices || (!audio && !video)) {
      message.textContent = t('room.listenOnly');
      if (navigator.mediaDevices && cameraSelect.options.length === 0) await listDevices();
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio, video });
    } catch (error) {
      message.textContent = `${captureErrorText(error)} ${t('room.listenOnly')}`;
      await listDevices().catch(() => {});
      return;
    }
    preview.srcObject = stream;
    stopMeter = startLevelMeter(stream, meter);
    await listDevices();
  }

  const element = h(
    'div',
    { class: 'room-devices' },
    preview,
    h(
      'div',
      { class: 'room-device-fields' },
      h('label', { class: 'field' }, h('span', {}, t('room.camera')), cameraSelect),
      h('label', { class: 'field' }, h('span', {}, t('room.microphone')), microphoneSelect),
      h('div', { class: 'field' }, h('span', {}, t('room.level')), meter),
      message,
    ),
  );

  return {
    element,
    open,
    stream: () => stream,
    stop: release,
    take() {
      const taken = stream;
      stopMeter();
      stopMeter = () => {};
      stream = null;
      preview.srcObject = null;
      return taken;
    },
  };
}
