//! The device: instance → adapter → device/queue, the limits we run under, error capture,
//! and reading results back. Native and browser differ only in how they wait for a mapped
//! buffer, and that difference lives in [`GpuContext::read_back`].

use std::sync::{Arc, Mutex};

use xlalign_core::error::{Error, Result};

use crate::kernels::Kernels;

/// Upper bound on what one storage binding may hold, even on adapters that allow more: big
/// enough for the 250k × 384 Q4_0 word table in one piece (48 MB of quants) and for the
/// activations of a few thousand tokens, small enough that a browser does not refuse it.
const PREFERRED_BINDING_BYTES: u64 = 1 << 30;

/// An adapter and a device opened on it, shared by the encoder and the alignment step.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) limits: wgpu::Limits,
    pub(crate) kernels: Kernels,
    adapter_info: wgpu::AdapterInfo,
    /// Errors no error scope caught (wgpu's default handler would panic on them).
    uncaptured: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.describe())
            .finish()
    }
}

/// Why no WebGPU device could be opened; `select` turns this into the CPU fallback reason.
#[derive(Clone, Debug)]
pub struct NoAdapter(pub String);

impl GpuContext {
    /// Opens the default adapter (native: Vulkan/Metal/DX12 as `WGPU_BACKEND` allows;
    /// browser: `navigator.gpu`) and a device with the limits the encoder needs.
    pub async fn new() -> Result<Arc<GpuContext>> {
        Self::open().await.map_err(|e| Error::Backend(e.0))
    }

    /// Like [`GpuContext::new`] but keeps "there is no adapter" apart from other failures.
    // In the browser wgpu's handles are neither Send nor Sync; `Arc` keeps one API for both
    // targets (the browser is single-threaded anyway).
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub(crate) async fn open() -> std::result::Result<Arc<GpuContext>, NoAdapter> {
        let instance = wgpu::Instance::new(instance_descriptor());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| NoAdapter(format!("no WebGPU adapter: {e}")))?;
        #[allow(unused_mut)]
        let mut adapter_info = adapter.get_info();
        #[cfg(target_arch = "wasm32")]
        if adapter_info.name.is_empty() {
            adapter_info.name = browser_adapter_name().await.unwrap_or_default();
        }
        let available = adapter.limits();
        let limits = required_limits(&available).map_err(NoAdapter)?;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("xlalign"),
                required_features: wgpu::Features::empty(),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                NoAdapter(format!(
                    "the WebGPU adapter `{}` refused a device: {e}",
                    adapter_info.name
                ))
            })?;

        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));

        let scope = ErrorScopes::push(&device);
        let kernels = Kernels::new(&device);
        scope
            .check("compiling the compute shaders")
            .await
            .map_err(|e| NoAdapter(e.to_string()))?;
        Ok(Arc::new(GpuContext {
            device,
            queue,
            limits,
            kernels,
            adapter_info,
            uncaptured,
        }))
    }

    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.adapter_info
    }

    /// True for CPU implementations of WebGPU (lavapipe/llvmpipe, SwiftShader, WARP).
    pub fn is_software(&self) -> bool {
        matches!(self.adapter_info.device_type, wgpu::DeviceType::Cpu)
            || ["llvmpipe", "lavapipe", "swiftshader", "warp"]
                .iter()
                .any(|s| self.adapter_info.name.to_ascii_lowercase().contains(s))
    }

    /// "llvmpipe (LLVM 15.0.6, 256 bits), Vulkan, software adapter".
    pub fn describe(&self) -> String {
        let i = &self.adapter_info;
        let name = if i.name.is_empty() {
            "unnamed adapter"
        } else {
            i.name.as_str()
        };
        let kind = match i.device_type {
            wgpu::DeviceType::DiscreteGpu => "discrete GPU",
            wgpu::DeviceType::IntegratedGpu => "integrated GPU",
            wgpu::DeviceType::VirtualGpu => "virtual GPU",
            wgpu::DeviceType::Cpu => "software adapter",
            wgpu::DeviceType::Other => {
                if self.is_software() {
                    "software adapter"
                } else {
                    "GPU"
                }
            }
        };
        format!("{name}, {:?}, {kind}", i.backend)
    }

    /// Largest buffer one storage binding may hold on this device.
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// Errors raised outside any error scope since the last call.
    pub(crate) fn take_uncaptured(&self) -> Option<String> {
        let mut v = self.uncaptured.lock().ok()?;
        if v.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut *v).join("; "))
        }
    }

    /// Copies the first `bytes` of a `MAP_READ` buffer to the host once the GPU has written it.
    pub(crate) async fn read_back(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<f32>> {
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let slice = buffer.slice(..bytes);
        let (tx, rx) = futures_channel::oneshot::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        // Natively nothing makes progress unless we poll; in the browser the map resolves
        // through the event loop while we await.
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Backend(format!("waiting for the GPU: {e}")))?;
        rx.await
            .map_err(|_| Error::Backend("the GPU device was lost while reading results".into()))?
            .map_err(|e| Error::Backend(format!("reading results from the GPU: {e}")))?;
        let out = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Backend(format!("reading results from the GPU: {e}")))?;
            bytemuck::pod_collect_to_vec::<u8, f32>(&view)
        };
        buffer.unmap();
        Ok(out)
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn instance_descriptor() -> wgpu::InstanceDescriptor {
    // Honours WGPU_BACKEND, WGPU_ADAPTER_NAME etc., so tests can force Vulkan/lavapipe.
    wgpu::InstanceDescriptor::new_without_display_handle_from_env()
}

#[cfg(target_arch = "wasm32")]
fn instance_descriptor() -> wgpu::InstanceDescriptor {
    wgpu::InstanceDescriptor {
        backends: wgpu::Backends::BROWSER_WEBGPU,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    }
}

/// WebGPU's default limits (which every WebGPU adapter offers), with the buffer-size limits
/// raised to what the adapter allows, up to [`PREFERRED_BINDING_BYTES`]: the default 128 MiB
/// per binding would cap the batch size. Fails if the adapter is below what the kernels need.
fn required_limits(adapter: &wgpu::Limits) -> std::result::Result<wgpu::Limits, String> {
    let needs = Kernels::needs();
    let checks = [
        (
            "maxComputeWorkgroupStorageSize",
            adapter.max_compute_workgroup_storage_size,
            needs.workgroup_storage,
        ),
        (
            "maxComputeInvocationsPerWorkgroup",
            adapter.max_compute_invocations_per_workgroup,
            needs.invocations,
        ),
        (
            "maxStorageBuffersPerShaderStage",
            adapter.max_storage_buffers_per_shader_stage,
            needs.storage_buffers,
        ),
    ];
    for (name, have, need) in checks {
        if have < need {
            return Err(format!(
                "the WebGPU adapter allows {name} = {have}, the kernels need {need}"
            ));
        }
    }
    let mut l = wgpu::Limits::default();
    l.max_buffer_size = adapter.max_buffer_size.min(PREFERRED_BINDING_BYTES);
    l.max_storage_buffer_binding_size = adapter
        .max_storage_buffer_binding_size
        .min(l.max_buffer_size);
    Ok(l)
}

/// Validation and out-of-memory scopes around a group of GPU calls, so that a failure comes
/// back as an `Error` for that call instead of a panic in wgpu's default handler.
pub(crate) struct ErrorScopes {
    validation: wgpu::ErrorScopeGuard,
    oom: wgpu::ErrorScopeGuard,
}

impl ErrorScopes {
    pub(crate) fn push(device: &wgpu::Device) -> ErrorScopes {
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        ErrorScopes { validation, oom }
    }

    /// Pops both scopes (innermost first) and reports what they caught.
    pub(crate) async fn check(self, what: &str) -> Result<()> {
        let validation = self.validation.pop();
        let oom = self.oom.pop();
        if let Some(e) = oom.await {
            return Err(Error::Backend(format!(
                "out of GPU memory while {what}: {e}"
            )));
        }
        if let Some(e) = validation.await {
            return Err(Error::Backend(format!("GPU error while {what}: {e}")));
        }
        Ok(())
    }
}

/// The browser's description of the adapter it would hand out ("google, swiftshader"), for a
/// name when wgpu's is empty: wgpu copies only `GPUAdapterInfo.description`, which Chromium
/// leaves blank, while `vendor` and `architecture` are filled in. Asks for the same
/// high-performance adapter again, since wgpu keeps its `GPUAdapter` to itself.
#[cfg(target_arch = "wasm32")]
async fn browser_adapter_name() -> Option<String> {
    use js_sys::{Function, Object, Promise, Reflect};
    use wasm_bindgen::{JsCast, JsValue};

    let get = |v: &JsValue, key: &str| Reflect::get(v, &JsValue::from_str(key)).ok();
    let gpu = get(&get(&js_sys::global(), "navigator")?, "gpu")?;
    let request: Function = get(&gpu, "requestAdapter")?.dyn_into().ok()?;
    let options = Object::new();
    Reflect::set(
        &options,
        &"powerPreference".into(),
        &"high-performance".into(),
    )
    .ok()?;
    let promise: Promise = request.call1(&gpu, &options).ok()?.dyn_into().ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    if adapter.is_null() || adapter.is_undefined() {
        return None;
    }
    let info = get(&adapter, "info")?;
    let fields: Vec<String> = ["vendor", "architecture", "device", "description"]
        .iter()
        .filter_map(|k| get(&info, k)?.as_string())
        .filter(|s| !s.is_empty())
        .collect();
    (!fields.is_empty()).then(|| fields.join(", "))
}
