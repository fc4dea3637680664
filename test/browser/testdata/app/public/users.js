'use strict';
// The two users of the one-to-one pages and their fake-camera streams: distinct aspect
// ratios (16:9 and 4:3) mark whose video a peer connection receives.
const CAMERA = {
  alice: { width: 640, height: 360 },
  bob: { width: 320, height: 240 },
};

async function cameraFor(name) {
  const { width, height } = CAMERA[name];
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: true,
    video: { width: { exact: width }, height: { exact: height }, frameRate: 30 },
  });
  const s = stream.getVideoTracks()[0].getSettings();
  console.log(`${name}: camera ${s.width}x${s.height}@${s.frameRate}, audio ${stream.getAudioTracks().length}`);
  return stream;
}
